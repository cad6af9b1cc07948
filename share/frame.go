package share

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
)

// MaxFrame is the largest frame body protocol v1 allows, in bytes.
const MaxFrame = 16 << 20

// ErrFrame means a peer broke the framing: a length of 0 or over MaxFrame,
// or a frame cut short. The connection cannot go on after it.
var ErrFrame = errors.New("bad frame")

// frameReader reads frames from a Unix socket, closing every descriptor
// the peer sends with them unless keep asks for it.
type frameReader struct {
	conn *net.UnixConn
	oob  []byte
	// fds are the descriptors received since the last takeFDs, when kept.
	fds  []*os.File
	keep bool
}

func newFrameReader(conn *net.UnixConn, keep bool) *frameReader {
	return &frameReader{conn: conn, oob: make([]byte, syscall.CmsgSpace(4*4)), keep: keep}
}

// Read reads from the socket, taking any descriptors that arrive with the
// bytes.
func (r *frameReader) Read(p []byte) (int, error) {
	n, oobn, _, _, err := r.conn.ReadMsgUnix(p, r.oob)
	if oobn > 0 {
		r.takeRights(r.oob[:oobn])
	}
	return n, err
}

// takeRights keeps or closes the descriptors in a control message.
func (r *frameReader) takeRights(oob []byte) {
	msgs, err := syscall.ParseSocketControlMessage(oob)
	if err != nil {
		return
	}
	for _, m := range msgs {
		fds, err := syscall.ParseUnixRights(&m)
		if err != nil {
			continue
		}
		for _, fd := range fds {
			if r.keep {
				r.fds = append(r.fds, os.NewFile(uintptr(fd), "shared shard"))
			} else {
				syscall.Close(fd)
			}
		}
	}
}

// takeFDs returns the descriptors kept since the last call.
func (r *frameReader) takeFDs() []*os.File {
	fds := r.fds
	r.fds = nil
	return fds
}

// readFrame reads one frame's body. io.EOF means the peer closed between
// frames; ErrFrame, that it broke the framing.
func readFrame(r io.Reader) ([]byte, error) {
	var header [4]byte
	if _, err := io.ReadFull(r, header[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("%w: cut short in its length", ErrFrame)
		}
		return nil, err
	}
	n := binary.BigEndian.Uint32(header[:])
	if n == 0 || n > MaxFrame {
		return nil, fmt.Errorf("%w: length %d is not between 1 and %d", ErrFrame, n, MaxFrame)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("%w: cut short after its length (%d bytes)", ErrFrame, n)
		}
		return nil, err
	}
	return body, nil
}

// writeFrame writes body as one frame, with fd, if not nil, as SCM_RIGHTS
// on the write of its first byte.
func writeFrame(conn *net.UnixConn, body []byte, fd *os.File) error {
	frame := make([]byte, 4+len(body))
	binary.BigEndian.PutUint32(frame, uint32(len(body)))
	copy(frame[4:], body)
	if fd == nil {
		_, err := conn.Write(frame)
		return err
	}
	n, _, err := conn.WriteMsgUnix(frame, syscall.UnixRights(int(fd.Fd())), nil)
	if err != nil {
		return err
	}
	_, err = conn.Write(frame[n:])
	return err
}
