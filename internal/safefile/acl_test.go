package safefile

import (
	"cmp"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// aclEntry is one entry of a POSIX ACL, as the xattr holds it.
type aclEntry struct {
	tag, perm uint16
	id        uint32
}

// encodeACL encodes entries as the system.posix_acl_access xattr value,
// in the order the kernel demands: by tag, then by ID.
func encodeACL(entries ...aclEntry) []byte {
	slices.SortFunc(entries, func(a, b aclEntry) int {
		return cmp.Or(cmp.Compare(a.tag, b.tag), cmp.Compare(a.id, b.id))
	})
	b := binary.LittleEndian.AppendUint32(nil, aclVersion)
	for _, e := range entries {
		b = binary.LittleEndian.AppendUint16(b, e.tag)
		b = binary.LittleEndian.AppendUint16(b, e.perm)
		b = binary.LittleEndian.AppendUint32(b, e.id)
	}
	return b
}

// credentialACL is the ACL systemd's LoadCredential= gives a credential it
// copies for the service user uid: owner read, user uid read, mask read.
func credentialACL(uid uint32, extra ...aclEntry) []byte {
	const r, none = 4, 0
	const undefinedID = ^uint32(0)
	entries := []aclEntry{
		{aclUserObj, r, undefinedID},
		{aclUser, r, uid},
		{aclGroupObj, none, undefinedID},
		{aclMask, r, undefinedID},
		{aclOther, none, undefinedID},
	}
	return encodeACL(append(entries, extra...)...)
}

// withACL writes a 0400 file and sets acl on it, skipping the test where the
// filesystem refuses POSIX ACLs.
func withACL(t *testing.T, acl []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "vramseal-token")
	require.NoError(t, os.WriteFile(path, []byte("secret"), 0o400))
	err := unix.Setxattr(path, aclXattr, acl, 0)
	if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOTSUP) {
		t.Skipf("the filesystem of %s refuses POSIX ACL xattrs: %v", path, err)
	}
	require.NoError(t, err)
	return path
}

func TestOpenPrivateAcceptsASystemdCredentialACLForThisUser(t *testing.T) {
	path := withACL(t, credentialACL(uint32(os.Geteuid())))
	info, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o440), info.Mode().Perm(), "the ACL mask shows in the group bits")

	f, _, err := openWithin(t, path, Options{Private: true})
	require.NoError(t, err)
	f.Close()
}

func TestOpenPrivateRefusesAnACLThatGrantsOthers(t *testing.T) {
	const r = 4
	me := uint32(os.Geteuid())
	for name, acl := range map[string][]byte{
		"another named user": credentialACL(me, aclEntry{aclUser, r, me + 1}),
		"a named group":      credentialACL(me, aclEntry{aclGroup, r, 1234}),
		"the owning group": encodeACL(
			aclEntry{aclUserObj, r, 0}, aclEntry{aclUser, r, me},
			aclEntry{aclGroupObj, r, 0}, aclEntry{aclMask, r, 0}, aclEntry{aclOther, 0, 0}),
		"others": encodeACL(
			aclEntry{aclUserObj, r, 0}, aclEntry{aclUser, r, me},
			aclEntry{aclGroupObj, 0, 0}, aclEntry{aclMask, r, 0}, aclEntry{aclOther, r, 0}),
	} {
		t.Run(name, func(t *testing.T) {
			path := withACL(t, acl)
			_, _, err := openWithin(t, path, Options{Private: true})
			assert.ErrorIs(t, err, ErrNotPrivate)
		})
	}
}

func TestACLOnlyForRefusesWhatItCannotRead(t *testing.T) {
	me := uint32(os.Geteuid())
	good := credentialACL(me)
	require.True(t, aclOnlyFor(good, me))
	wrongVersion := append([]byte{}, good...)
	wrongVersion[0] = 1
	for name, acl := range map[string][]byte{
		"empty":         nil,
		"short header":  good[:3],
		"torn entry":    good[:len(good)-1],
		"wrong version": wrongVersion,
		"unknown tag":   append(credentialACL(me), encodeACL(aclEntry{0x40, 0, 0})[aclHeaderSize:]...),
	} {
		assert.False(t, aclOnlyFor(acl, me), name)
	}
}
