package lambdafn

import (
	"context"
	"log/slog"
)

// MinLevel returns a handler that passes h the records at level or above.
func MinLevel(h slog.Handler, level slog.Leveler) slog.Handler {
	return &minLevel{next: h, level: level}
}

type minLevel struct {
	next  slog.Handler
	level slog.Leveler
}

func (h *minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.level.Level() && h.next.Enabled(ctx, l)
}

func (h *minLevel) Handle(ctx context.Context, r slog.Record) error { return h.next.Handle(ctx, r) }

func (h *minLevel) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &minLevel{next: h.next.WithAttrs(attrs), level: h.level}
}

func (h *minLevel) WithGroup(name string) slog.Handler {
	return &minLevel{next: h.next.WithGroup(name), level: h.level}
}
