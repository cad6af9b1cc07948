package share

import (
	"errors"

	"github.com/vramseal/vramseal/supervisor"
)

// Version is the protocol version this package speaks.
const Version = 1

// The ops of protocol v1 (docs/share-protocol.md).
const (
	opHello    = "hello"
	opWelcome  = "welcome"
	opList     = "list"
	opShards   = "shards"
	opAcquire  = "acquire"
	opGrant    = "grant"
	opRelease  = "release"
	opReleased = "released"
	opRevoke   = "revoke"
	opStatus   = "status"
	opError    = "error"
)

// The error codes of protocol v1.
const (
	CodeBadFrame     = "bad_frame"
	CodeBadRequest   = "bad_request"
	CodeUnknownShard = "unknown_shard"
	CodeUnknownLease = "unknown_lease"
	CodeNotAllowed   = "not_allowed"
	CodeVersion      = "version"
	CodeBusy         = "busy"
	CodeStopped      = "stopped"
	CodeUnshareable  = "unshareable"
	CodeInternal     = "internal"
)

// The reasons a revoke gives.
const (
	ReasonIntegrity = "integrity"
	ReasonEvicted   = "evicted"
	ReasonStopped   = "stopped"
	ReasonDevice    = "device"
)

// request is any client message; which fields count depends on Op.
type request struct {
	Op       string  `json:"op"`
	Req      *int64  `json:"req,omitempty"`
	Version  *int    `json:"version,omitempty"`
	ID       *string `json:"id,omitempty"`
	Verified *bool   `json:"verified,omitempty"`
	Lease    *uint64 `json:"lease,omitempty"`
}

// ShardInfo is a served shard, as list and status answer.
type ShardInfo struct {
	ID      string              `json:"id"`
	Device  int                 `json:"device"`
	Size    int64               `json:"size"`
	Digest  string              `json:"digest"`
	Tensors []supervisor.Tensor `json:"tensors"`
}

// Grant is a lease's description, as the grant message carries it.
type Grant struct {
	Lease      uint64              `json:"lease"`
	ID         string              `json:"id"`
	Size       int64               `json:"size"`
	Digest     string              `json:"digest"`
	ChunkSize  int64               `json:"chunk_size"`
	Handle     string              `json:"handle"`
	Offset     int64               `json:"offset"`
	MapSize    int64               `json:"map_size"`
	DeviceUUID string              `json:"device_uuid"`
	Verified   bool                `json:"verified"`
	Tensors    []supervisor.Tensor `json:"tensors"`
}

// ClientInfo is one connected client, as status answers.
type ClientInfo struct {
	PID    int      `json:"pid"`
	UID    int      `json:"uid"`
	GID    int      `json:"gid"`
	Leases []uint64 `json:"leases"`
}

// reply is any server message; which fields count depends on Op.
type reply struct {
	Op      string       `json:"op"`
	Req     *int64       `json:"req,omitempty"`
	Version int          `json:"version,omitempty"`
	Worker  string       `json:"worker,omitempty"`
	Shards  []ShardInfo  `json:"shards,omitempty"`
	Clients []ClientInfo `json:"clients,omitempty"`
	*Grant
	Lease   uint64 `json:"lease,omitempty"`
	Reason  string `json:"reason,omitempty"`
	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
}

// Error is an error the server answered, with its code.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string { return "lease server: " + e.Code + ": " + e.Message }

// revokeReason is the protocol's word for why a lease was revoked.
func revokeReason(err error) string {
	switch {
	case errors.Is(err, supervisor.ErrSealVerificationFailed):
		return ReasonIntegrity
	case errors.Is(err, supervisor.ErrEvicted):
		return ReasonEvicted
	case errors.Is(err, supervisor.ErrDeviceFault):
		return ReasonDevice
	}
	return ReasonStopped
}

// errorCode is the protocol's code for an error from the runtime.
func errorCode(err error) string {
	switch {
	case errors.Is(err, supervisor.ErrUnknownShard):
		return CodeUnknownShard
	case errors.Is(err, supervisor.ErrStopped), errors.Is(err, supervisor.ErrRevoked):
		return CodeStopped
	case errors.Is(err, supervisor.ErrInvalidInput):
		return CodeBadRequest
	}
	return CodeInternal
}
