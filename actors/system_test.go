package actors

import (
	"bytes"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestSystemLogsProtoactorsInfoAtDebugLevel(t *testing.T) {
	var out bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelInfo}))
	system := NewSystem(logger)
	defer system.Shutdown()

	system.Logger().Info("[DeadLetter]", "pid", "gpu-0")
	system.Logger().Warn("supervision went wrong")
	assert.NotContains(t, out.String(), "DeadLetter", "an info line of protoactor's is hidden at info level")
	assert.Contains(t, out.String(), "level=WARN msg=\"supervision went wrong\"", "warnings keep their level")

	out.Reset()
	debug := slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug}))
	verbose := NewSystem(debug)
	defer verbose.Shutdown()
	verbose.Logger().With("component", "protoactor").Info("[DeadLetter]")
	assert.Contains(t, out.String(), "level=DEBUG msg=[DeadLetter] component=protoactor")
}
