package main

import (
	"io"
	"log/slog"

	"github.com/spf13/cobra"
)

// logFlags are the global flags that shape log lines. Logs go to stderr;
// protoactor's own logging goes through the same handler.
type logFlags struct {
	format *choiceFlag
	level  *choiceFlag
}

// register adds --log-format and --log-level to every command.
func (f *logFlags) register(cmd *cobra.Command) {
	f.format = newChoiceFlag("text", "text", "json")
	f.level = newChoiceFlag("info", "debug", "info", "warn", "error")
	cmd.PersistentFlags().Var(f.format, "log-format", "log line format on stderr")
	cmd.PersistentFlags().Var(f.level, "log-level", "least severe level logged")
}

// newLogger builds the logger the flags ask for, writing to w.
func (f *logFlags) newLogger(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(f.level.String())); err != nil {
		return nil, usageErrorf("--log-level: %v", err)
	}
	opts := &slog.HandlerOptions{Level: level}
	if f.format.String() == "json" {
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return slog.New(slog.NewTextHandler(w, opts)), nil
}
