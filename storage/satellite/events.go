package satellite

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/pvehci/pvehci/internal/run"
	"github.com/pvehci/pvehci/storage/drbd"
)

// Following the kernel between passes.
//
// A pass reads a consistent snapshot of DRBD with `drbdsetup events2 --now
// --statistics`. Between passes the loop follows the live `drbdsetup
// events2` stream, one long-running process, and applies its lines to its
// own copy of DRBD's state; when a line changes a role, a disk, a
// connection or a replication state (what kernelDigest covers) and the
// state then differs from the last report, a pass runs at once. The
// controller needs that promptness, e.g. to see a VM's stop before
// Proxmox deactivates its volume. Statistics-only lines (resync progress)
// wake nothing.
//
// When the stream cannot run (a Runner that cannot stream, drbdsetup
// missing, the DRBD module unloaded) or ends, the loop polls `events2
// --now` every WatchInterval instead, and starts the stream again after a
// backoff.

// streamRetry bounds the backoff between attempts to start the stream.
const (
	streamRetryMin = time.Second
	streamRetryMax = 30 * time.Second
)

// digestKeys are the fields whose change can change kernelDigest.
var digestKeys = map[string]bool{
	"role": true, "suspended": true, "disk": true, "open": true, "quorum": true,
	"connection": true, "replication": true, "peer-disk": true,
}

// kernelWatch is the loop's view of DRBD from the live stream.
type kernelWatch struct {
	// moved gets a token when a line changed what kernelDigest covers.
	moved chan struct{}

	mu     sync.Mutex
	o      *drbd.Observed
	live   bool // the stream runs and has printed its initial state
	digest string
	stale  bool // digest needs recomputing from o
}

func newKernelWatch() *kernelWatch {
	return &kernelWatch{moved: make(chan struct{}, 1), o: drbd.NewObserved()}
}

// running reports whether the stream is up to date with the kernel.
func (w *kernelWatch) running() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.live
}

// current returns the digest of the stream's state, false while the stream
// does not run.
func (w *kernelWatch) current() (string, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.live {
		return "", false
	}
	if w.stale {
		rs, err := w.o.Resources()
		if err != nil {
			return "", false
		}
		w.digest, w.stale = kernelDigest(rs), false
	}
	return w.digest, true
}

// apply takes one stream line.
func (w *kernelWatch) apply(e drbd.Event) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.o.Apply(e); err != nil {
		return err
	}
	if e.InitialDumpDone() {
		w.live, w.stale = true, true
		w.signal()
		return nil
	}
	if !w.live {
		return nil
	}
	relevant := e.Action != drbd.ActionChange
	for _, f := range e.Fields {
		relevant = relevant || digestKeys[f.Key]
	}
	if relevant && (e.Object != drbd.ObjectHelper) {
		w.stale = true
		w.signal()
	}
	return nil
}

func (w *kernelWatch) signal() {
	select {
	case w.moved <- struct{}{}:
	default:
	}
}

// reset forgets the stream's state when it ended.
func (w *kernelWatch) reset() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.o, w.live, w.stale = drbd.NewObserved(), false, false
}

// follow runs the events2 stream until ctx ends, starting it again after
// it ended.
func (l *Loop) follow(ctx context.Context, s run.Streamer, w *kernelWatch, log *slog.Logger) {
	r := l.Reconciler
	retry := streamRetryMin
	lastErr := ""
	for ctx.Err() == nil {
		started := time.Now()
		var bad error
		err := s.Stream(ctx, r.cmd("drbdsetup", "events2"), func(line []byte) {
			if bad != nil {
				return
			}
			e, err := drbd.ParseEvent(string(line))
			if err == nil {
				err = w.apply(e)
			}
			if err != nil {
				// A line we cannot read leaves our copy of the state
				// unknown: poll until the stream starts afresh.
				bad = err
				w.reset()
			}
		})
		w.reset()
		if ctx.Err() != nil {
			return
		}
		if bad != nil {
			err = bad
		}
		if time.Since(started) > streamRetryMax {
			retry = streamRetryMin // it ran well for a while
		}
		msg := "ended"
		if err != nil {
			msg = err.Error()
		}
		if msg != lastErr {
			log.Warn("drbdsetup events2 stream stopped; polling events2 --now until it runs again", "err", msg, "retry", retry)
			lastErr = msg
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(retry):
		}
		retry = min(retry*2, streamRetryMax)
	}
}
