package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// version is the release, set at build time with
// -ldflags "-X main.version=v1.2.3"; empty means the module version from the
// build information.
var version = ""

// buildInfo is what "vramseal version" reports.
type buildInfo struct {
	version, commit, goVersion string
}

// readBuildInfo gathers the version, commit and Go version this binary was
// built with.
func readBuildInfo() buildInfo {
	b := buildInfo{version: version, commit: "unknown", goVersion: runtime.Version()}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		if b.version == "" {
			b.version = "unknown"
		}
		return b
	}
	if b.version == "" {
		b.version = info.Main.Version
	}
	modified := false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			b.commit = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if modified {
		b.commit += " (modified)"
	}
	return b
}

func newVersionCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print the version, commit and Go version (as --version does)",
		Example: `  vramseal version`,
		Args:    cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			_, err := fmt.Fprint(a.stdout, readBuildInfo().text())
			return err
		},
	}
}

// text is the version report that "vramseal version" and "vramseal
// --version" print.
func (b buildInfo) text() string {
	return fmt.Sprintf("vramseal %s\ncommit: %s\ngo: %s %s/%s\n", b.version, b.commit, b.goVersion, runtime.GOOS, runtime.GOARCH)
}
