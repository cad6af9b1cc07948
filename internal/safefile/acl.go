package safefile

import (
	"encoding/binary"
	"os"

	"golang.org/x/sys/unix"
)

// aclXattr is the extended attribute that holds a file's POSIX access ACL.
const aclXattr = "system.posix_acl_access"

// The POSIX ACL xattr's layout (linux/posix_acl_xattr.h): a 4-byte version,
// then 8-byte entries of tag (u16), permissions (u16) and ID (u32), all
// little-endian.
const (
	aclVersion    = 2
	aclHeaderSize = 4
	aclEntrySize  = 8

	aclUserObj  = 0x01
	aclUser     = 0x02
	aclGroupObj = 0x04
	aclGroup    = 0x08
	aclMask     = 0x10
	aclOther    = 0x20
)

// maxACLBytes bounds the ACL read: far more entries than a file has.
const maxACLBytes = aclHeaderSize + 1024*aclEntrySize

// aclGrantsOnlyUs reports whether f's group bits come from an ACL mask that
// grants access to nobody but this process's user: the owning group and
// others get nothing, no named group gets anything, and a named user with
// any permission is this user. systemd's LoadCredential= gives a service
// user its credential this way (root-owned, mode 0400, plus an ACL entry
// for the user), which then reads as mode 0440. A file whose others bits
// are set, or that has no ACL, is not accepted.
func aclGrantsOnlyUs(f *os.File, perm os.FileMode) bool {
	if perm&0o007 != 0 {
		return false
	}
	buf := make([]byte, maxACLBytes)
	n, err := unix.Fgetxattr(int(f.Fd()), aclXattr, buf)
	if err != nil {
		return false // no ACL (ENODATA), or none this system reports
	}
	return aclOnlyFor(buf[:n], uint32(os.Geteuid()))
}

// aclOnlyFor reports whether the POSIX ACL xattr value acl grants
// permissions to no group, to no others and to no named user but uid.
func aclOnlyFor(acl []byte, uid uint32) bool {
	if len(acl) < aclHeaderSize || (len(acl)-aclHeaderSize)%aclEntrySize != 0 ||
		binary.LittleEndian.Uint32(acl) != aclVersion {
		return false
	}
	for e := acl[aclHeaderSize:]; len(e) > 0; e = e[aclEntrySize:] {
		tag := binary.LittleEndian.Uint16(e[0:])
		perm := binary.LittleEndian.Uint16(e[2:])
		id := binary.LittleEndian.Uint32(e[4:])
		switch tag {
		case aclUserObj, aclMask:
		case aclUser:
			if perm != 0 && id != uid {
				return false
			}
		case aclGroupObj, aclGroup, aclOther:
			if perm != 0 {
				return false
			}
		default:
			return false // an entry we do not know may grant access
		}
	}
	return true
}
