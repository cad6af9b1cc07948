package share

import (
	"fmt"
	"net"
	"os"
	"slices"

	"golang.org/x/sys/unix"

	"github.com/vramseal/vramseal/supervisor"
)

// peerOf reads a Unix socket peer's credentials (SO_PEERCRED), as the
// kernel recorded them at connect.
func peerOf(conn *net.UnixConn) (supervisor.Peer, error) {
	raw, err := conn.SyscallConn()
	if err != nil {
		return supervisor.Peer{}, err
	}
	var cred *unix.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return supervisor.Peer{}, err
	}
	if credErr != nil {
		return supervisor.Peer{}, fmt.Errorf("peer credentials: %w", credErr)
	}
	return supervisor.Peer{PID: int(cred.Pid), UID: int(cred.Uid), GID: int(cred.Gid)}, nil
}

// allowRule says which peers may connect: the server's own user, root, and
// the users and groups configured.
type allowRule struct {
	self       int
	uids, gids []int
}

// check is nil for an allowed peer, else the refusal, naming the rule.
func (r allowRule) check(p supervisor.Peer) error {
	if p.UID == r.self || p.UID == 0 || slices.Contains(r.uids, p.UID) || slices.Contains(r.gids, p.GID) {
		return nil
	}
	return &Error{Code: CodeNotAllowed, Message: fmt.Sprintf(
		"uid %d (gid %d) may not connect: the server allows its own uid %d, root, uids %v and gids %v (--serve-allow-uid, --serve-allow-gid)",
		p.UID, p.GID, r.self, r.uids, r.gids)}
}

func newAllowRule(uids, gids []int) allowRule {
	return allowRule{self: os.Getuid(), uids: slices.Clone(uids), gids: slices.Clone(gids)}
}
