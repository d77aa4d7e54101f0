package run

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// Lines arrive while the program still runs, and cancelling ctx kills it
// (with its process group) and ends the stream with ctx's error.
func TestExecStreamHandsOverLinesAsTheyCome(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var got []string
	done := make(chan error, 1)
	go func() {
		done <- Exec{}.Stream(ctx, Command("sh", "-c", "echo one; echo two; sleep 60 & wait"), func(l []byte) {
			got = append(got, string(l))
			if len(got) == 2 {
				cancel()
			}
		})
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("stream ended with %v, want context.Canceled", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the stream did not end after ctx was cancelled")
	}
	if strings.Join(got, ",") != "one,two" {
		t.Fatalf("lines %q", got)
	}
}

func TestExecStreamEnd(t *testing.T) {
	tests := []struct {
		name     string
		script   string
		wantCode int
		wantErr  string
	}{
		{"clean exit", "echo a", 0, ""},
		{"failure", "echo a; echo 'no module' >&2; exit 20", 20, "exit code 20: stderr: no module"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var lines int
			err := Exec{}.Stream(context.Background(), Command("sh", "-c", tt.script), func([]byte) { lines++ })
			if lines != 1 {
				t.Errorf("%d lines, want 1", lines)
			}
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("err %v", err)
				}
				return
			}
			if ExitCode(err) != tt.wantCode || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err %v (exit code %d), want %q with %d", err, ExitCode(err), tt.wantErr, tt.wantCode)
			}
		})
	}
}

func TestFakeStream(t *testing.T) {
	f := NewFake(t)
	f.On("drbdsetup", "events2").StreamFunc(func(ctx context.Context, line func([]byte)) error {
		line([]byte("exists -"))
		line([]byte("change resource name:r0 role:Primary"))
		<-ctx.Done()
		return ctx.Err()
	})
	f.On("drbdsetup", "events2", "--now").Stdout("exists resource name:r0 role:Secondary\nexists -\n")
	ctx, cancel := context.WithCancel(context.Background())
	var got []string
	err := f.Stream(ctx, Command("drbdsetup", "events2"), func(l []byte) {
		got = append(got, string(l))
		if len(got) == 2 {
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) || len(got) != 2 {
		t.Fatalf("scripted stream: %v %q", err, got)
	}
	got = nil
	if err := f.Stream(context.Background(), Command("drbdsetup", "events2", "--now"), func(l []byte) { got = append(got, string(l)) }); err != nil || strings.Join(got, "|") != "exists resource name:r0 role:Secondary|exists -" {
		t.Fatalf("answered as Run: %v %q", err, got)
	}
	if tr := f.String(); !strings.Contains(tr, "drbdsetup events2\ndrbdsetup events2 --now") {
		t.Fatalf("transcript:\n%s", tr)
	}
}
