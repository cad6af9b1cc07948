package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"
)

// TestDeploymentFilesRunFlagsThisCommandHas parses the command lines of the
// systemd unit and the Kubernetes DaemonSet in deploy/ with this command's
// own flags, so that a renamed flag or a bad value there fails here. The
// deploy package's tests check the files themselves.
func TestDeploymentFilesRunFlagsThisCommandHas(t *testing.T) {
	for name, args := range map[string][]string{
		"systemd unit": unitExecStart(t, "../../deploy/systemd/vramseal.service"),
		"DaemonSet":    daemonSetArgs(t, "../../deploy/kubernetes/20-daemonset.yaml"),
	} {
		t.Run(name, func(t *testing.T) {
			require.Equal(t, "run", args[0])
			var stdout, stderr bytes.Buffer
			a := &app{stdout: &stdout, stderr: &stderr}
			// --help parses every flag and value, then prints the help
			// instead of running.
			err := a.execute(context.Background(), append(args, "--help"))
			require.NoError(t, err, "vramseal %s", strings.Join(args, " "))
			assert.Contains(t, stdout.String(), "Usage:")
		})
	}
}

// unitExecStart is the arguments of the unit's ExecStart, after the binary,
// with systemd's %H specifier (the host name) filled in.
func unitExecStart(t *testing.T, path string) []string {
	t.Helper()
	unit, err := os.ReadFile(path)
	require.NoError(t, err)
	joined := strings.ReplaceAll(string(unit), "\\\n", " ")
	for line := range strings.SplitSeq(joined, "\n") {
		if cmd, ok := strings.CutPrefix(line, "ExecStart="); ok {
			fields := strings.Fields(strings.ReplaceAll(cmd, "%H", "gpu-host-1"))
			require.Greater(t, len(fields), 1)
			return fields[1:]
		}
	}
	require.FailNow(t, "no ExecStart in "+path)
	return nil
}

// daemonSetArgs is the arguments of the DaemonSet's only container, with the
// $(NODE_NAME) it refers to filled in.
func daemonSetArgs(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	var ds struct {
		Spec struct {
			Template struct {
				Spec struct {
					Containers []struct {
						Args []string `json:"args"`
					} `json:"containers"`
				} `json:"spec"`
			} `json:"template"`
		} `json:"spec"`
	}
	require.NoError(t, yaml.Unmarshal(data, &ds))
	containers := ds.Spec.Template.Spec.Containers
	require.Len(t, containers, 1)
	args := make([]string, 0, len(containers[0].Args))
	for _, arg := range containers[0].Args {
		args = append(args, strings.ReplaceAll(arg, "$(NODE_NAME)", "gpu-node-1"))
	}
	return args
}
