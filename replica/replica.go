// Package replica runs keyport's background work when several processes
// share one store (storage.Shared): a job that must run in one process at
// a time runs where its lead is held (Led), and memory that mirrors
// stored records is reloaded when any process changes them (Watch). With
// a store of one process (Shared nil) Led simply runs the job and Watch
// has nothing to do: that process sees its own changes.
package replica

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/keyport/keyport/storage"
)

// Defaults.
const (
	// DefaultRetry is how often a process that does not lead a job asks
	// for it again: how long a job may pause when its leader dies (the
	// lead itself passes at once, with the dead process's connection).
	DefaultRetry = 15 * time.Second
	// DefaultFallback is how often Watch reloads everything without a
	// notice: the bound on staleness should notices be lost.
	DefaultFallback = 30 * time.Second
)

// Led runs job whenever this process holds the lead of name, with a
// context that ends when the lead is lost (or ctx ends); when job
// returns or the lead is lost, the lead is released and asked for again
// after retry, as it is while another process holds it. job must return
// when its context ends. Led returns when ctx ends. With shared nil, job
// runs once, with ctx.
func Led(ctx context.Context, shared storage.Shared, name string, retry time.Duration, log *slog.Logger, job func(context.Context)) {
	if shared == nil {
		job(ctx)
		return
	}
	if retry <= 0 {
		retry = DefaultRetry
	}
	leading := false
	for ctx.Err() == nil {
		lead, err := shared.TryLead(ctx, name)
		switch {
		case err == nil:
			if !leading {
				log.InfoContext(ctx, "leading a job in this process", "job", name)
			}
			leading = runLed(ctx, lead, job)
			if !leading {
				log.WarnContext(ctx, "lost the lead of a job; another process may take it", "job", name)
			}
		case errors.Is(err, storage.ErrLeadTaken):
			leading = false
		case ctx.Err() == nil:
			leading = false
			log.ErrorContext(ctx, "ask for the lead of a job", "job", name, "err", err)
		}
		wait(ctx, retry)
	}
}

// runLed runs job under lead and tells whether the lead was still held
// when job returned.
func runLed(ctx context.Context, lead storage.Lead, job func(context.Context)) (held bool) {
	jobCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		job(jobCtx)
	}()
	select {
	case <-done:
		held = true
	case <-lead.Lost():
		cancel()
		<-done
	case <-ctx.Done():
		cancel()
		<-done
		held = true
	}
	select {
	case <-lead.Lost():
		held = false
	default:
	}
	lead.Release()
	return held
}

// Watch keeps memory that mirrors stored records current: reload[topic]
// runs after each change of that topic any process commits, every
// reload runs once whenever the watch (re)starts (notices may have been
// missed while it was down) and every fallback. Notices that arrive
// while a topic reloads make one more reload, not one each. Watch
// returns when ctx ends; with shared nil it returns at once.
func Watch(ctx context.Context, shared storage.Shared, reload map[string]func(context.Context) error, fallback time.Duration, log *slog.Logger) {
	if shared == nil {
		return
	}
	if fallback <= 0 {
		fallback = DefaultFallback
	}
	topics := slices.Sorted(maps.Keys(reload))
	var mu sync.Mutex
	dirty := map[string]bool{}
	kick := make(chan struct{}, 1)
	mark := func(topic string) {
		mu.Lock()
		if _, known := reload[topic]; known {
			dirty[topic] = true
		}
		mu.Unlock()
		select {
		case kick <- struct{}{}:
		default:
		}
	}
	markAll := func() {
		for _, t := range topics {
			mark(t)
		}
	}
	// The reloader: one reload at a time, each dirty topic once.
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		tick := time.NewTicker(fallback)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				markAll()
			case <-kick:
			}
			mu.Lock()
			due := slices.Sorted(maps.Keys(dirty))
			clear(dirty)
			mu.Unlock()
			for _, t := range due {
				if err := reload[t](ctx); err != nil && ctx.Err() == nil {
					log.ErrorContext(ctx, "reload after a change by another process", "topic", t, "err", err)
				}
			}
		}
	})
	for ctx.Err() == nil {
		err := shared.WatchChanges(ctx, markAll, mark)
		if ctx.Err() != nil {
			return
		}
		log.WarnContext(ctx, "watching for changes by other processes failed; retrying", "err", err)
		wait(ctx, time.Second)
	}
}

func wait(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
