package lambdafn_test

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/stampede-cache/stampede/internal/lambdafn"
)

func TestMinLevel(t *testing.T) {
	for _, tt := range []struct {
		min, inner slog.Level
		want       []string
	}{
		{slog.LevelInfo, slog.LevelDebug, []string{"info", "warn", "error"}},
		{slog.LevelDebug, slog.LevelDebug, []string{"debug", "info", "warn", "error"}},
		{slog.LevelError, slog.LevelDebug, []string{"error"}},
		// The inner handler's own level still applies.
		{slog.LevelDebug, slog.LevelWarn, []string{"warn", "error"}},
	} {
		var buf bytes.Buffer
		inner := slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: tt.inner})
		log := slog.New(lambdafn.MinLevel(inner, tt.min)).With("k", "v").WithGroup("g")
		log.Debug("debug")
		log.Info("info")
		log.Warn("warn")
		log.Error("error")
		var got []string
		for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
			if line == "" {
				continue
			}
			if !strings.Contains(line, "k=v") {
				t.Errorf("line %q lost the logger's attributes", line)
			}
			_, msg, _ := strings.Cut(line, "msg=")
			msg, _, _ = strings.Cut(msg, " ")
			got = append(got, msg)
		}
		if strings.Join(got, ",") != strings.Join(tt.want, ",") {
			t.Errorf("min %v over inner %v: logged %v, want %v", tt.min, tt.inner, got, tt.want)
		}
	}
}
