package sealer_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/vramseal/vramseal/messages"
	"github.com/vramseal/vramseal/sealer"
)

// Example derives a worker's key, digests some data, signs its record, and
// shows that the record checks until a field changes.
func Example() {
	key, err := sealer.DeriveKey([]byte("a worker token of 32 bytes or so"), "worker-1")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer key.Zero()

	data := []byte("model weights")
	d, err := sealer.NewDigester(sealer.DefaultChunkSize)
	if err != nil {
		fmt.Println(err)
		return
	}
	d.Write(data)
	sums := d.Digests()

	shard := sealer.Shard{
		ID: "demo.shard-00", Device: 0, Size: int64(len(data)),
		Digest: sums.Digest, ChunkSize: sealer.DefaultChunkSize, ChunkRoot: sums.ChunkRoot,
		SealedAt: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC), ModelRef: "demo-model",
	}
	if err := sealer.Sign(key, &shard); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("key:", key)
	fmt.Println("signed:", shard.Signed(), "check:", sealer.CheckSignature(key, &shard))

	shard.Size++ // someone edits the record
	err = sealer.CheckSignature(key, &shard)
	fmt.Println("tampered:", errors.Is(err, messages.ErrSealVerificationFailed))
	fmt.Println(err)
	// Output:
	// key: sealer.Key(433b7c)
	// signed: true check: <nil>
	// tampered: true
	// shard "demo.shard-00": signature does not match the record: seal verification failed
}
