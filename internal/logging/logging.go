// Package logging sets up pvehci's log/slog loggers and writes down when to
// use which level.
//
// [New] builds a *slog.Logger and returns the *slog.LevelVar behind it, so the
// level can change while the daemon runs ([LevelHandler] serves it over HTTP).
// There is no global logger: main builds one and passes it down, and each
// component adds its own attributes with Logger.With("component", …).
//
// # Levels
//
// Error: pvehci failed at something it was asked to do or must do, and an
// operator has to act: an apply step failed and was rolled back, a DRBD
// resource went StandAlone or split-brain, a scheduled snapshot or verify
// failed, the controller lost quorum. Every Error says what failed, for which
// object, and (when known) what to do.
//
// Warn: something is wrong or unusual but pvehci coped or will retry: a
// command failed and will be retried, a peer is unreachable, a resource is
// degraded but still has a good replica, a config file was found edited by
// hand and left alone, a setting was ignored. A Warn that repeats is
// rate-limited by its caller (once per condition change, or at most once a
// minute).
//
// Info: a change of state an operator would want in the journal: the daemon
// started or stopped (with version and config), a node joined or left,
// leadership moved, a resource was created, promoted, relocated or deleted,
// a file on the host was changed (WriteFile reported changed=true), a
// scheduled job ran. In steady state (nothing changing) Info appears at most
// once every few seconds; a loop that logs every iteration logs at Debug.
// Info is the default level.
//
// Debug: detail for whoever is chasing a bug: every command run and its
// duration, every file compared, raw events2 lines, reconcile decisions,
// requests and responses. It may be voluminous; it must never carry secrets
// (join tokens, API passwords), which no level may carry.
//
// Messages start lower case and name the action ("resource promoted"), with
// the details as attributes ("resource", "r0", "node", "pve2") rather than
// formatted into the message, so that they can be searched and parsed.
// Errors go in an "err" attribute.
package logging

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
)

// Format is the output format of a logger.
type Format string

const (
	// FormatText is slog's key=value text, the default.
	FormatText Format = "text"
	// FormatJSON is one JSON object per line.
	FormatJSON Format = "json"
)

// Options configures [New].
type Options struct {
	// Format is FormatText or FormatJSON; empty means FormatText.
	Format Format
	// Level is the initial minimum level (slog.LevelInfo is the zero
	// value).
	Level slog.Level
	// OmitTime drops the time attribute, for output that goes to the
	// journal (which stamps lines itself) and for stable test output.
	OmitTime bool
}

// New returns a logger writing to w and the level variable that controls
// it. It panics if opts.Format is not a known format; parse user input with
// [ParseFormat] first.
func New(w io.Writer, opts Options) (*slog.Logger, *slog.LevelVar) {
	lv := new(slog.LevelVar)
	lv.Set(opts.Level)
	ho := &slog.HandlerOptions{Level: lv}
	if opts.OmitTime {
		ho.ReplaceAttr = func(groups []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey && len(groups) == 0 {
				return slog.Attr{}
			}
			return a
		}
	}
	var h slog.Handler
	switch opts.Format {
	case FormatText, "":
		h = slog.NewTextHandler(w, ho)
	case FormatJSON:
		h = slog.NewJSONHandler(w, ho)
	default:
		panic(fmt.Sprintf("logging: unknown format %q", opts.Format))
	}
	return slog.New(h), lv
}

// levels are the level names pvehci accepts, in order.
var levels = []struct {
	name  string
	level slog.Level
}{
	{"debug", slog.LevelDebug},
	{"info", slog.LevelInfo},
	{"warn", slog.LevelWarn},
	{"error", slog.LevelError},
}

// ParseLevel parses debug, info, warn or error, in any case.
func ParseLevel(s string) (slog.Level, error) {
	for _, l := range levels {
		if strings.EqualFold(strings.TrimSpace(s), l.name) {
			return l.level, nil
		}
	}
	return 0, fmt.Errorf("logging: unknown level %q (valid: debug, info, warn, error)", s)
}

// LevelName returns the name ParseLevel accepts for l: "debug", "info",
// "warn" or "error", or slog's own name (such as "INFO+2") for others.
func LevelName(l slog.Level) string {
	for _, x := range levels {
		if x.level == l {
			return x.name
		}
	}
	return l.String()
}

// ParseFormat parses text or json, in any case.
func ParseFormat(s string) (Format, error) {
	switch f := Format(strings.ToLower(strings.TrimSpace(s))); f {
	case FormatText, FormatJSON:
		return f, nil
	}
	return "", fmt.Errorf("logging: unknown format %q (valid: text, json)", s)
}

// LevelHandler serves lv over HTTP: GET (or HEAD) answers the level name and
// a newline; PUT with a level name as the body (or as the "level" query
// parameter) sets it and answers the new name. A bad level gets 400, other
// methods 405.
func LevelHandler(lv *slog.LevelVar) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		switch r.Method {
		case http.MethodGet, http.MethodHead:
		case http.MethodPut:
			s := r.URL.Query().Get("level")
			if s == "" {
				body, err := io.ReadAll(io.LimitReader(r.Body, 64))
				if err != nil {
					http.Error(w, err.Error(), http.StatusBadRequest)
					return
				}
				s = string(body)
			}
			l, err := ParseLevel(s)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			lv.Set(l)
		default:
			w.Header().Set("Allow", "GET, HEAD, PUT")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		io.WriteString(w, LevelName(lv.Level())+"\n")
	})
}
