package notify

import "testing"

func TestBroadcast(t *testing.T) {
	var b Broadcast
	first, second := b.Wait(), b.Wait()
	if first != second {
		t.Fatal("two waiters before a change got different channels")
	}
	select {
	case <-first:
		t.Fatal("closed before any change")
	default:
	}
	b.Notify()
	for _, ch := range []<-chan struct{}{first, second} {
		select {
		case <-ch:
		default:
			t.Fatal("a waiter was not woken")
		}
	}
	if next := b.Wait(); next == first {
		t.Error("a closed channel was handed out again")
	}
	b.Notify() // with a waiter's channel taken before: closes it
	var idle Broadcast
	idle.Notify() // nobody waiting: nothing to close, no panic
}
