package main

import (
	"bytes"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// readme is the project's README, read from the repository root.
func readme(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	return string(b)
}

// helpOf is the --help text of a command line, run in-process.
func helpOf(t *testing.T, args ...string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(append(args, "--help"), &out, &errOut, false)
	require.Equal(t, exitOK, code, errOut.String())
	return out.String()
}

func TestQuickStartIsTwoCommandsAndTheSecondIsWhatCIRuns(t *testing.T) {
	text := readme(t)
	start := strings.Index(text, "<!-- quickstart -->")
	end := strings.Index(text, "<!-- /quickstart -->")
	require.True(t, start >= 0 && end > start, "the README marks its quick start")
	quick := text[start:end]
	blocks := regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllStringSubmatch(quick, -1)
	require.Len(t, blocks, 1, "one shell block")
	lines := strings.Split(strings.TrimSpace(blocks[0][1]), "\n")
	require.Len(t, lines, 2, "two command lines")
	assert.True(t, strings.HasPrefix(lines[0], "./make.sh run "), lines[0])
	assert.Contains(t, lines[0], "--duration", "the first command is a bounded run")
	assert.Equal(t, "./make.sh test", lines[1])

	ci, err := os.ReadFile("../../.ci/run")
	require.NoError(t, err)
	ciLines := strings.Split(strings.TrimSpace(string(ci)), "\n")
	assert.Equal(t, lines[1], ciLines[len(ciLines)-1], ".ci/run ends with the quick start's test command")
}

// helpTexts are the --help of every command, keyed by command line.
func helpTexts(t *testing.T) map[string]string {
	t.Helper()
	texts := map[string]string{}
	for _, cmd := range [][]string{{}, {"run"}, {"devices"}, {"audit"}, {"audit", "verify"}, {"version"}, {"stress"}, {"bench"}, {"share"}, {"share", "list"}, {"share", "check"}} {
		texts[strings.Join(append([]string{"vramseal"}, cmd...), " ")] = helpOf(t, cmd...)
	}
	return texts
}

func TestEveryFlagTheREADMENamesIsInSomeHelp(t *testing.T) {
	var all strings.Builder
	for _, h := range helpTexts(t) {
		all.WriteString(h)
	}
	// Lines that run other programs name their flags, not ours.
	otherTool := regexp.MustCompile(`\b(systemctl|journalctl|systemd-analyze|kubectl|docker|go|model_signing|openssl|pip) `)
	var flags []string
	for _, line := range strings.Split(readme(t), "\n") {
		if !otherTool.MatchString(line) {
			flags = append(flags, regexp.MustCompile(`--[a-z][a-z0-9-]+`).FindAllString(line, -1)...)
		}
	}
	require.NotEmpty(t, flags)
	for _, f := range slices.Compact(slices.Sorted(slices.Values(flags))) {
		assert.Contains(t, all.String(), f, "the README names %s, which no --help does", f)
	}
}

func TestREADMEAndHelpListTheSameExitCodes(t *testing.T) {
	helps := helpTexts(t)
	text := readme(t)
	codes := regexp.MustCompile(`(?:^|[:;,])\s*(\d)\s`)
	codesIn := func(s string) []string {
		var out []string
		for _, m := range codes.FindAllStringSubmatch(s, -1) {
			out = append(out, m[1])
		}
		return slices.Compact(slices.Sorted(slices.Values(out)))
	}
	for _, cmd := range []string{"vramseal run", "vramseal audit verify", "vramseal devices"} {
		t.Run(cmd, func(t *testing.T) {
			help := helps[cmd]
			i := strings.Index(help, "Exit codes:")
			require.GreaterOrEqual(t, i, 0, "%s --help lists its exit codes", cmd)
			helpCodes := help[i+len("Exit codes:"):]
			helpCodes = helpCodes[:strings.Index(helpCodes, "\n\n")]

			j := strings.Index(text, "`"+cmd+"`:")
			require.GreaterOrEqual(t, j, 0, "the README lists the exit codes of %s", cmd)
			para := text[j+len(cmd)+3:]
			para = para[:strings.Index(para, "\n\n")]
			assert.Equal(t, codesIn(helpCodes), codesIn(para), "%s: --help %q, README %q", cmd, helpCodes, para)
			assert.NotEmpty(t, codesIn(para))
			t.Logf("%s: exit codes %v", cmd, codesIn(para))
		})
	}
}
