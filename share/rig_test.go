package share_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"io"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/audit"
	"github.com/vramseal/vramseal/share"
	"github.com/vramseal/vramseal/supervisor"
)

// served is a runtime on a shareable Sim with a lease server in front.
type served struct {
	rig    *supervisor.Rig
	server *share.Server
	path   string
	data   []byte
	shard  supervisor.Shard
}

// serve seals one 300,001-byte shard "w" on a shareable Sim and serves it;
// the test stops both.
func serve(t *testing.T, edit func(*share.Config)) *served {
	t.Helper()
	return serveOn(t, supervisor.RigConfig{Shareable: true}, edit)
}

// serveOn is serve on a rig made with cfg.
func serveOn(t *testing.T, rigCfg supervisor.RigConfig, edit func(*share.Config)) *served {
	t.Helper()
	rig, err := supervisor.MakeRig(context.Background(), rigCfg)
	require.NoError(t, err)
	s := &served{rig: rig, path: filepath.Join(t.TempDir(), "run", "share.sock"), data: make([]byte, 300_001)}
	for i := range s.data {
		s.data[i] = byte(i * 7)
	}
	s.shard, err = rig.Seal(context.Background(), supervisor.SealRequest{ID: "w", Size: int64(len(s.data)), Data: bytes.NewReader(s.data)})
	require.NoError(t, err)
	cfg := share.Config{Runtime: rig.Runtime, Path: s.path, WorkerID: "rig"}
	if edit != nil {
		edit(&cfg)
	}
	s.server, err = share.Listen(cfg)
	require.NoError(t, err)
	t.Cleanup(func() {
		assert.NoError(t, s.server.Close())
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		err := rig.Stop(ctx)
		if rig.Err() == nil {
			assert.NoError(t, err)
		}
	})
	return s
}

// events lists the audit records named event.
func (s *served) events(event string) []audit.Record {
	var out []audit.Record
	for _, r := range s.rig.Audit.Records() {
		if r.Event == event {
			out = append(out, r)
		}
	}
	return out
}

// rawClient speaks only what docs/share-protocol.md says: length-prefixed
// JSON frames, descriptors as SCM_RIGHTS. It uses nothing of package share.
type rawClient struct {
	t    *testing.T
	conn *net.UnixConn
}

func dialRaw(t *testing.T, path string) *rawClient {
	t.Helper()
	c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: path, Net: "unix"})
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	require.NoError(t, c.SetDeadline(time.Now().Add(30*time.Second)))
	return &rawClient{t: t, conn: c}
}

// hello dials and says hello.
func helloRaw(t *testing.T, path string) *rawClient {
	c := dialRaw(t, path)
	c.send(map[string]any{"op": "hello", "version": 1, "req": 1})
	m, _ := c.recv()
	require.Equal(t, "welcome", m["op"], "%v", m)
	require.EqualValues(t, 1, m["req"])
	return c
}

// sendRaw writes one frame with the given body.
func (c *rawClient) sendRaw(body []byte) {
	c.t.Helper()
	frame := binary.BigEndian.AppendUint32(nil, uint32(len(body)))
	_, err := c.conn.Write(append(frame, body...))
	require.NoError(c.t, err)
}

func (c *rawClient) send(msg map[string]any) {
	c.t.Helper()
	body, err := json.Marshal(msg)
	require.NoError(c.t, err)
	c.sendRaw(body)
}

// recv reads one frame, and the descriptor that came with it, if any.
func (c *rawClient) recv() (map[string]any, *os.File) {
	c.t.Helper()
	m, fd, err := c.tryRecv()
	require.NoError(c.t, err)
	return m, fd
}

func (c *rawClient) tryRecv() (map[string]any, *os.File, error) {
	header := make([]byte, 4)
	oob := make([]byte, syscall.CmsgSpace(4))
	n, oobn, _, _, err := c.conn.ReadMsgUnix(header, oob)
	if err != nil {
		return nil, nil, err
	}
	var fd *os.File
	if oobn > 0 {
		msgs, err := syscall.ParseSocketControlMessage(oob[:oobn])
		require.NoError(c.t, err)
		fds, err := syscall.ParseUnixRights(&msgs[0])
		require.NoError(c.t, err)
		require.Len(c.t, fds, 1, "one descriptor per frame")
		fd = os.NewFile(uintptr(fds[0]), "grant")
		c.t.Cleanup(func() { fd.Close() })
	}
	if _, err := io.ReadFull(c.conn, header[n:]); err != nil {
		return nil, nil, err
	}
	body := make([]byte, binary.BigEndian.Uint32(header))
	if _, err := io.ReadFull(c.conn, body); err != nil {
		return nil, nil, err
	}
	var m map[string]any
	require.NoError(c.t, json.Unmarshal(body, &m))
	return m, fd, nil
}

// closed reports whether the server closed the connection.
func (c *rawClient) closed() bool {
	_, _, err := c.tryRecv()
	return err != nil
}

// openFiles counts this process's descriptors.
func openFiles(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	return len(entries)
}
