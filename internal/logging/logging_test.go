package logging

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestNewOutput(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"text", Options{OmitTime: true},
			"level=INFO msg=\"resource promoted\" component=drbd resource=r0 err=\"exit code 10\"\n"},
		{"text is the default for the zero Format", Options{Format: "", OmitTime: true},
			"level=INFO msg=\"resource promoted\" component=drbd resource=r0 err=\"exit code 10\"\n"},
		{"json", Options{Format: FormatJSON, OmitTime: true},
			`{"level":"INFO","msg":"resource promoted","component":"drbd","resource":"r0","err":"exit code 10"}` + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			log, _ := New(&buf, tt.opts)
			log.With("component", "drbd").Info("resource promoted", "resource", "r0", "err", errors.New("exit code 10"))
			if got := buf.String(); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestNewJSONHasTime(t *testing.T) {
	var buf bytes.Buffer
	log, _ := New(&buf, Options{Format: FormatJSON})
	log.Warn("peer unreachable", "peer", "pve2")
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("%v: %s", err, buf.Bytes())
	}
	if rec["level"] != "WARN" || rec["peer"] != "pve2" {
		t.Errorf("record %v", rec)
	}
	ts, _ := rec["time"].(string)
	if _, err := time.Parse(time.RFC3339Nano, ts); err != nil {
		t.Errorf("time %q: %v", ts, err)
	}
}

func TestLevelChangesAtRunTime(t *testing.T) {
	var buf bytes.Buffer
	log, lv := New(&buf, Options{Level: slog.LevelInfo, OmitTime: true})
	emit := func() string {
		buf.Reset()
		log.Debug("d")
		log.Info("i")
		log.Warn("w")
		log.Error("e")
		return strings.ReplaceAll(buf.String(), "\n", " ")
	}
	steps := []struct {
		set  slog.Level
		want string
	}{
		{slog.LevelInfo, "level=INFO msg=i level=WARN msg=w level=ERROR msg=e "},
		{slog.LevelDebug, "level=DEBUG msg=d level=INFO msg=i level=WARN msg=w level=ERROR msg=e "},
		{slog.LevelError, "level=ERROR msg=e "},
	}
	for _, s := range steps {
		lv.Set(s.set)
		if got := emit(); got != s.want {
			t.Errorf("at %v: %q, want %q", s.set, got, s.want)
		}
	}
}

func TestParseLevel(t *testing.T) {
	tests := []struct {
		in      string
		want    slog.Level
		wantErr string
	}{
		{"debug", slog.LevelDebug, ""},
		{"INFO", slog.LevelInfo, ""},
		{"Warn", slog.LevelWarn, ""},
		{" error\n", slog.LevelError, ""},
		{"warning", 0, `logging: unknown level "warning" (valid: debug, info, warn, error)`},
		{"info+2", 0, `logging: unknown level "info+2" (valid: debug, info, warn, error)`},
		{"", 0, `logging: unknown level "" (valid: debug, info, warn, error)`},
	}
	for _, tt := range tests {
		got, err := ParseLevel(tt.in)
		if tt.wantErr != "" {
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("ParseLevel(%q) err = %v, want %s", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseLevel(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
		if back, _ := ParseLevel(LevelName(got)); back != got {
			t.Errorf("LevelName(%v) = %q does not parse back", got, LevelName(got))
		}
	}
	if got := LevelName(slog.LevelInfo + 2); got != "INFO+2" {
		t.Errorf("LevelName(INFO+2) = %q", got)
	}
}

func TestParseFormat(t *testing.T) {
	tests := []struct {
		in   string
		want Format
		ok   bool
	}{
		{"text", FormatText, true},
		{"JSON", FormatJSON, true},
		{"logfmt", "", false},
	}
	for _, tt := range tests {
		got, err := ParseFormat(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseFormat(%q) = %q, %v", tt.in, got, err)
		}
	}
	if _, err := ParseFormat("xml"); err == nil || !strings.Contains(err.Error(), "(valid: text, json)") {
		t.Errorf("error does not list the valid formats: %v", err)
	}
	defer func() {
		if recover() == nil {
			t.Error("New with an unknown format did not panic")
		}
	}()
	New(&bytes.Buffer{}, Options{Format: "xml"})
}

func TestLevelHandler(t *testing.T) {
	var buf bytes.Buffer
	log, lv := New(&buf, Options{OmitTime: true})
	h := LevelHandler(lv)
	steps := []struct {
		method, target, body string
		wantCode             int
		wantBody             string
		wantLevel            slog.Level
	}{
		{"GET", "/debug/loglevel", "", 200, "info\n", slog.LevelInfo},
		{"PUT", "/debug/loglevel", "DEBUG\n", 200, "debug\n", slog.LevelDebug},
		{"PUT", "/debug/loglevel?level=warn", "", 200, "warn\n", slog.LevelWarn},
		{"PUT", "/debug/loglevel", "loud", 400, "logging: unknown level \"loud\" (valid: debug, info, warn, error)\n", slog.LevelWarn},
		{"POST", "/debug/loglevel", "debug", 405, "method not allowed\n", slog.LevelWarn},
		{"GET", "/debug/loglevel", "", 200, "warn\n", slog.LevelWarn},
	}
	for _, s := range steps {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(s.method, s.target, strings.NewReader(s.body)))
		if rec.Code != s.wantCode || rec.Body.String() != s.wantBody {
			t.Errorf("%s %s %q: %d %q, want %d %q", s.method, s.target, s.body, rec.Code, rec.Body, s.wantCode, s.wantBody)
		}
		if lv.Level() != s.wantLevel {
			t.Errorf("%s %s %q: level %v, want %v", s.method, s.target, s.body, lv.Level(), s.wantLevel)
		}
		if s.wantCode == http.StatusMethodNotAllowed && rec.Header().Get("Allow") == "" {
			t.Error("405 without Allow")
		}
	}
	// The handler's change reaches the logger.
	buf.Reset()
	log.Info("hidden")
	log.Warn("shown")
	if got := buf.String(); got != "level=WARN msg=shown\n" {
		t.Errorf("after PUT warn the logger wrote %q", got)
	}
}
