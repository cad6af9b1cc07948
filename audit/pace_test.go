package audit

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// crowded and idle are the goroutines waiting for a P as tests want them.
func crowded() int { return 1 << 20 }
func idle() int    { return 0 }

func TestPacerWindow(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name      string
		syncs     []time.Duration // fsync times, the last one begun at lastStart
		lastStart time.Time
		maxLinger time.Duration
		want      time.Duration
	}{
		{"no fsync yet", nil, time.Time{}, time.Second, 0},
		{"fsync just done", []time.Duration{300 * time.Microsecond}, now.Add(-300 * time.Microsecond), time.Second, 900 * time.Microsecond},
		{"due already", []time.Duration{300 * time.Microsecond}, now.Add(-2 * time.Millisecond), time.Second, 0},
		{"capped", []time.Duration{time.Second}, now.Add(-time.Second), 2 * time.Millisecond, 2 * time.Millisecond},
		{"one slow fsync moves the average an eighth of the way", []time.Duration{time.Millisecond, 9 * time.Millisecond}, now, time.Minute, pace * 2 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPacer(pacing{waiting: crowded, maxLinger: tt.maxLinger})
			for _, d := range tt.syncs {
				p.synced(tt.lastStart, d)
			}
			assert.Equal(t, tt.want, p.window(now))
		})
	}
}

// lingerAsync runs p.linger(q, woken) in a goroutine the test waits for
// through the returned channel, which says how many records were queued
// then.
func lingerAsync(p *pacer, q *queue, woken int) <-chan int {
	done := make(chan int, 1)
	go func() {
		p.linger(q, woken)
		n, _, _ := q.state()
		done <- n
	}()
	return done
}

// awaitLinger returns what done says once linger has returned. If it goes
// on waiting, awaitLinger fails the test, and closes q to end the wait.
func awaitLinger(t *testing.T, done <-chan int, q *queue, why string) int {
	t.Helper()
	select {
	case n := <-done:
		return n
	case <-time.After(10 * time.Second):
		q.close()
		<-done
		t.Fatal(why)
		return 0
	}
}

// putRecords queues n records in q.
func putRecords(t *testing.T, q *queue, n int) {
	t.Helper()
	for range n {
		_, _, err := q.put(context.Background(), encodedTail(`"event":"x"`))
		require.NoError(t, err)
	}
}

func TestLingerReturnsAtOnceWhenAnFsyncWouldCostNothing(t *testing.T) {
	waitingOnlyForTheWoken := func() int { return 10 }
	tests := []struct {
		name      string
		waiting   func() int
		woken     int
		queued    int
		synced    bool // an fsync began just now
		maxLinger time.Duration
	}{
		{"CPU with room to spare", idle, 0, 1, true, time.Hour},
		{"only the woken callers wait for the CPU", waitingOnlyForTheWoken, 10, 1, true, time.Hour},
		{"nothing queued", crowded, 0, 0, true, time.Hour},
		{"no fsync yet", crowded, 0, 1, false, time.Hour},
		{"no linger allowed", crowded, 0, 1, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPacer(pacing{waiting: tt.waiting, maxLinger: tt.maxLinger})
			if tt.synced {
				p.synced(time.Now(), time.Hour)
			}
			q := newQueue(4)
			putRecords(t, q, tt.queued)

			n := awaitLinger(t, lingerAsync(p, q, tt.woken), q, "linger waited though an fsync now costs nothing")
			assert.Equal(t, tt.queued, n)
		})
	}
}

func TestLingerOnASaturatedCPUWaitsForTheQueueToFillOrClose(t *testing.T) {
	tests := []struct {
		name string
		end  func(t *testing.T, q *queue)
		want int
	}{
		{"queue fills", func(t *testing.T, q *queue) { putRecords(t, q, 2) }, 3},
		{"queue closes", func(t *testing.T, q *queue) { q.close() }, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			asked := make(chan struct{})
			var once sync.Once
			waiting := func() int {
				once.Do(func() { close(asked) })
				return crowded()
			}
			p := newPacer(pacing{waiting: waiting, maxLinger: time.Hour})
			p.synced(time.Now(), time.Hour)
			q := newQueue(3)
			putRecords(t, q, 1)

			done := lingerAsync(p, q, 0)
			select {
			case <-asked: // linger is about to wait
			case <-time.After(10 * time.Second):
				q.close()
				<-done
				t.Fatal("linger did not ask whether the CPU is saturated")
			}
			tt.end(t, q)
			n := awaitLinger(t, done, q, "linger went on waiting")
			assert.Equal(t, tt.want, n, "linger returned before the queue filled or closed")
		})
	}
}

func TestLingerEndsWhenTheCPUHasRoomAgain(t *testing.T) {
	const woken = 5
	var waiting atomic.Int64 // goroutines waiting for a P: the woken callers, and as many others as Ps
	waiting.Store(int64(runtime.GOMAXPROCS(0) + woken))
	p := newPacer(pacing{waiting: func() int { return int(waiting.Load()) }, maxLinger: time.Hour})
	p.synced(time.Now(), time.Hour)
	q := newQueue(100)
	putRecords(t, q, 1)

	done := lingerAsync(p, q, woken)
	putRecords(t, q, woken) // the woken callers are back
	waiting.Store(0)        // and the others are done
	n := awaitLinger(t, done, q, "linger went on waiting on an idle CPU")
	assert.Equal(t, 1+woken, n)
}

func TestLingerEndsWhenTheFsyncIsDue(t *testing.T) {
	p := newPacer(pacing{waiting: crowded, maxLinger: time.Hour})
	p.synced(time.Now(), 5*time.Millisecond) // due 20 ms from now
	q := newQueue(4)
	putRecords(t, q, 1)

	n := awaitLinger(t, lingerAsync(p, q, 0), q, "linger waited past the fsync's due time")
	assert.Equal(t, 1, n)
}

func TestPacingNeverHoldsALoneRecord(t *testing.T) {
	key := testKey(t, "w1")
	path := filepath.Join(t.TempDir(), "audit.log")
	saturatedForAnHour := pacing{waiting: crowded, maxLinger: time.Hour}
	l, err := open(path, LogConfig{Key: key}, func(f *os.File) logFile { return f }, saturatedForAnHour)
	require.NoError(t, err)

	for i := range 5 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := l.Record(ctx, record(i))
		cancel()
		require.NoError(t, err, "record %d waited for company that never came", i)
	}
	st := l.Stats()
	require.NoError(t, l.Close())
	assert.Equal(t, uint64(5), st.Syncs)
	assert.Equal(t, 5, verifyFile(t, path, key).Records)
}

func TestWaitingForCPUCountsGoroutinesWaitingForAP(t *testing.T) {
	procs := runtime.GOMAXPROCS(0)
	require.Less(t, waitingForCPU(), procs, "a test alone leaves Ps free")

	stop := make(chan struct{})
	var spinning sync.WaitGroup
	for range 4 * procs {
		spinning.Go(func() {
			for {
				select {
				case <-stop:
					return
				//lint:ignore SA5004 the goroutines spin on purpose, to keep every P busy
				default:
				}
			}
		})
	}
	assert.Eventually(t, func() bool { return waitingForCPU() >= procs }, 10*time.Second, time.Millisecond,
		"busy goroutines queue for the Ps")
	close(stop)
	spinning.Wait()
	assert.Eventually(t, func() bool { return waitingForCPU() < procs }, 10*time.Second, time.Millisecond)
}
