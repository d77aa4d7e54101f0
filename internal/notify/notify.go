// Package notify wakes every waiter at once when something changes: the
// replicated state as a node applies it (ha), the satellites' reports on
// the leader (storage/controller). Waiters take a channel, do their work,
// and sleep on the channel; a change between the two is never lost,
// because the channel is only replaced when it is closed.
package notify

import "sync"

// Broadcast is a change signal for any number of waiters. The zero value
// is ready to use.
type Broadcast struct {
	mu sync.Mutex
	ch chan struct{}
}

// Wait returns a channel that is closed at the next Notify.
func (b *Broadcast) Wait() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ch == nil {
		b.ch = make(chan struct{})
	}
	return b.ch
}

// Notify wakes everyone waiting.
func (b *Broadcast) Notify() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ch != nil {
		close(b.ch)
		b.ch = nil
	}
}
