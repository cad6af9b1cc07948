package supervisor

import (
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// workerExample is the README's embedding example, as a file that runs as
// a test (Example_worker).
const workerExample = "example_worker_test.go"

// module is this module's path: the prefix of every vramseal package.
const module = "github.com/vramseal/vramseal"

func TestREADMEShowsTheWorkerExampleExactly(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	require.NoError(t, err)
	text := string(readme)
	start := strings.Index(text, "<!-- embedding-example -->\n```go\n")
	end := strings.Index(text, "```\n<!-- /embedding-example -->")
	require.True(t, start >= 0 && end > start, "the README marks its embedding example")
	block := text[start+len("<!-- embedding-example -->\n```go\n") : end]
	file, err := os.ReadFile(workerExample)
	require.NoError(t, err)
	assert.Equal(t, string(file), block, "the README's embedding example is %s, verbatim", workerExample)
}

func TestTheWorkerExampleImportsAtMostTwoVramsealPackages(t *testing.T) {
	ours := workerImports(t)
	assert.LessOrEqual(t, len(ours), 2, "a worker needs supervisor and one backend: %v", ours)
	assert.Contains(t, ours, module+"/supervisor")
}

// TestASimOnlyWorkerNeedsNoCgo lists every package the worker example
// imports, with their dependencies: none outside the standard library may
// have cgo files (the CUDA driver and NVML stay out), and they build with
// CGO_ENABLED=0.
func TestASimOnlyWorkerNeedsNoCgo(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH:", err)
	}
	pkgs := workerImports(t)
	list := exec.Command(goTool, append([]string{"list", "-deps", "-f", "{{.ImportPath}} {{.Standard}} {{len .CgoFiles}}"}, pkgs...)...)
	out, err := list.CombinedOutput()
	require.NoError(t, err, "%s", out)
	var deps int
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		require.Len(t, f, 3, line)
		deps++
		if f[1] == "false" {
			assert.Equal(t, "0", f[2], "%s has cgo files, so a Sim-only worker would need cgo", f[0])
		}
	}
	assert.Greater(t, deps, len(pkgs), "go list listed the dependencies")

	build := exec.Command(goTool, append([]string{"build", "-o", os.DevNull}, pkgs...)...)
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err = build.CombinedOutput()
	assert.NoError(t, err, "CGO_ENABLED=0 go build %v: %s", pkgs, out)
}

// workerImports are the vramseal packages the worker example imports.
func workerImports(t *testing.T) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), workerExample, nil, parser.ImportsOnly)
	require.NoError(t, err)
	var ours []string
	for _, imp := range f.Imports {
		path, err := strconv.Unquote(imp.Path.Value)
		require.NoError(t, err)
		if path == module || strings.HasPrefix(path, module+"/") {
			ours = append(ours, path)
		}
	}
	return ours
}
