package controller

import (
	"context"
	"log/slog"
	"time"
)

// runLoop is how the leader's loops run: a pass at once, then after every
// change of the state or of the reports, or every interval without any.
// minGap, when set, spaces the passes: reports arrive after every pass of
// every satellite, far more often than some loops need to look.
func runLoop(ctx context.Context, changed func() <-chan struct{}, store *Store, interval, minGap time.Duration,
	pass func(context.Context) error, log *slog.Logger, what string) error {
	for {
		stateChanged, reportsChanged := changed(), store.Changed()
		if err := pass(ctx); err != nil && ctx.Err() == nil {
			log.Warn(what, "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-stateChanged:
		case <-reportsChanged:
		case <-time.After(interval):
		}
		if minGap > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(minGap):
			}
		}
	}
}

// orDiscard is log, or a logger that drops everything.
func orDiscard(log *slog.Logger) *slog.Logger {
	if log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return log
}
