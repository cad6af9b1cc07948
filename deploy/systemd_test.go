package deploy

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// unitPath is the systemd unit under test.
const unitPath = "systemd/vramseal.service"

// installedBinary is where the unit expects vramseal.
const installedBinary = "/usr/local/bin/vramseal"

// maxExposure bounds "systemd-analyze security"'s exposure score, times 10
// (its --threshold): the unit scores 1.5 of 10 today; more means hardening
// was lost.
const maxExposure = 20

// unitCopy writes the unit to a new directory with ExecStart pointing at a
// stand-in executable, since systemd-analyze verify checks that the binary
// exists and this machine need not have vramseal installed. Nothing else
// changes.
func unitCopy(t *testing.T) string {
	t.Helper()
	unit, err := os.ReadFile(unitPath)
	require.NoError(t, err)
	require.Contains(t, string(unit), "ExecStart="+installedBinary+" ")
	dir := t.TempDir()
	stub := filepath.Join(dir, "vramseal")
	require.NoError(t, os.WriteFile(stub, []byte("#!/bin/sh\n"), 0o755))
	path := filepath.Join(dir, "vramseal.service")
	require.NoError(t, os.WriteFile(path, bytes.ReplaceAll(unit, []byte(installedBinary), []byte(stub)), 0o644))
	return path
}

// systemdAnalyze runs systemd-analyze with args, or skips the test when it is
// not installed.
func systemdAnalyze(t *testing.T, args ...string) (string, error) {
	t.Helper()
	bin, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed (Debian: apt-get install systemd); .ci/run installs it")
	}
	out, err := exec.Command(bin, args...).CombinedOutput()
	return string(out), err
}

func TestSystemdUnitPassesSystemdAnalyzeVerify(t *testing.T) {
	out, err := systemdAnalyze(t, "verify", unitCopy(t))
	assert.NoError(t, err, out)
	// verify exits 0 on unknown keys and bad values it ignores; they are
	// warnings on its output.
	assert.Empty(t, out, "systemd-analyze verify says")
}

func TestSystemdUnitIsHardened(t *testing.T) {
	out, err := systemdAnalyze(t, "security", "--offline=yes", "--threshold="+strconv.Itoa(maxExposure), unitCopy(t))
	assert.NoError(t, err, "exposure above %d/100:\n%s", maxExposure, out)
}

// unitSettings parses a unit file into its settings by section, joining
// continued lines and dropping comments.
func unitSettings(t *testing.T) map[string]map[string][]string {
	t.Helper()
	f, err := os.Open(unitPath)
	require.NoError(t, err)
	defer f.Close()
	settings := map[string]map[string][]string{}
	section, pending := "", ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if pending != "" {
			line, pending = pending+" "+line, ""
		}
		if cont, ok := strings.CutSuffix(line, "\\"); ok {
			pending = strings.TrimSpace(cont)
			continue
		}
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "["):
			section = strings.Trim(line, "[]")
			settings[section] = map[string][]string{}
		default:
			key, value, ok := strings.Cut(line, "=")
			require.True(t, ok, "not a setting: %q", line)
			settings[section][key] = append(settings[section][key], value)
		}
	}
	require.NoError(t, sc.Err())
	return settings
}

func TestSystemdUnitKeepsItsPromises(t *testing.T) {
	service := unitSettings(t)["Service"]
	require.NotNil(t, service)
	for key, want := range map[string]string{
		"Type":            "notify",
		"LoadCredential":  "vramseal-token:/etc/vramseal/token",
		"StateDirectory":  "vramseal",
		"NoNewPrivileges": "yes",
		"ProtectSystem":   "strict",
		"ProtectHome":     "yes",
		"PrivateTmp":      "yes",
		"DevicePolicy":    "closed",
		"DynamicUser":     "yes",
	} {
		assert.Equal(t, []string{want}, service[key], key)
	}
	assert.Contains(t, service["DeviceAllow"], "char-nvidia-frontend rw", "the GPUs and nvidiactl")
	assert.Contains(t, service["DeviceAllow"], "char-nvidia-uvm rw", "unified memory")
	assert.NotContains(t, service, "PrivateDevices", "it would hide /dev/nvidia*")
	assert.NotEmpty(t, service["WatchdogSec"])
	noRestart := strings.Fields(strings.Join(service["RestartPreventExitStatus"], " "))
	assert.Contains(t, noRestart, "3", "no restart after a fail-stop")
	assert.Contains(t, noRestart, "4", "no restart with a model that is not the published one")

	execStart := strings.Fields(strings.Join(service["ExecStart"], " "))
	require.NotEmpty(t, execStart)
	assert.Equal(t, []string{installedBinary, "run"}, execStart[:2])
	for _, flag := range []string{"--token-file", "--audit-log", "--sim-fault"} {
		assert.False(t, slices.ContainsFunc(execStart, func(arg string) bool { return strings.HasPrefix(arg, flag) }),
			"%s: the token comes from the credential, the audit log follows $STATE_DIRECTORY", flag)
	}
	assert.Contains(t, execStart, "--backend")
}
