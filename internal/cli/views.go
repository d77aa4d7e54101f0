package cli

// The operator views: node, storage-pool, resource-group,
// resource-definition, resource, volume and snapshot commands that talk to
// a controller's LINSTOR REST API, the way the python `linstor` client
// does, with golinstor as the HTTP client.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	linstor "github.com/LINBIT/golinstor"
	lc "github.com/LINBIT/golinstor/client"
	ucli "github.com/urfave/cli/v3"
)

// defaultController is where the linstor client looks when nothing is
// configured; a pvehci node runs a controller endpoint there.
const defaultController = "http://localhost:3370"

// maxAPIBody bounds what the views read of one answer; a list of thousands
// of resources is a few MiB, anything far beyond that is not the API.
const maxAPIBody = 64 << 20

// controllersFlag is shared by every command that talks to the REST API.
// The name and the environment variable are the linstor client's, so that
// an operator's LS_CONTROLLERS works for both.
func controllersFlag() ucli.Flag {
	return &ucli.StringFlag{
		Name:    "controllers",
		Usage:   "comma-separated controllers to try in turn: host, host:port or http(s)://host:port",
		Value:   defaultController,
		Sources: ucli.EnvVars("LS_CONTROLLERS"),
	}
}

// apiConn is one command's connection to the REST API.
type apiConn struct {
	*lc.Client
	urls []string // as tried, for messages
	rec  *bodyRecorder
}

// dialAPI builds the client from --controllers. Nothing is sent yet, so
// it cannot fail on an unreachable controller; the first call does.
func dialAPI(c *ucli.Command) (*apiConn, error) {
	urls, err := parseControllers(c.String("controllers"))
	if err != nil {
		return nil, usageError{fmt.Errorf("--controllers: %w", err)}
	}
	rec := &bodyRecorder{base: http.DefaultTransport}
	names := make([]string, len(urls))
	for i, u := range urls {
		names[i] = u.String()
	}
	cl, err := lc.NewClient(
		lc.BaseURL(urls...),
		// Spawn and delete answer once the satellites have acted, which
		// the server bounds at a minute; leave room for that.
		lc.HTTPClient(&http.Client{Transport: rec, Timeout: 3 * time.Minute}),
		lc.Log(nil), // golinstor's default logger prints a curl line per request
		lc.UserAgent("pvehci"),
	)
	if err != nil {
		return nil, err
	}
	return &apiConn{Client: cl, urls: names, rec: rec}, nil
}

// parseControllers accepts what the linstor client accepts: host,
// host:port, or a URL with http or https; the port defaults to 3370 for
// http and 3371 for https.
func parseControllers(s string) ([]*url.URL, error) {
	var urls []*url.URL
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		raw := part
		if !strings.Contains(raw, "://") {
			raw = "http://" + raw
		}
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
			return nil, fmt.Errorf("%q is not a controller address; write host, host:port or http://host:port", part)
		}
		switch u.Scheme {
		case "http", "https":
		default:
			return nil, fmt.Errorf("%q: the scheme must be http or https", part)
		}
		if u.Port() == "" {
			port := "3370"
			if u.Scheme == "https" {
				port = "3371"
			}
			u.Host = net.JoinHostPort(u.Hostname(), port)
		}
		u.Path = ""
		urls = append(urls, u)
	}
	if len(urls) == 0 {
		return nil, errors.New("no controller given; write e.g. --controllers 10.0.0.1,10.0.0.2")
	}
	return urls, nil
}

// bodyRecorder keeps the body of the last answer. golinstor decodes
// answers into its own structs, which drop zero values (omitempty) and
// fields it does not know, and it throws away the ApiCallRc list of
// successful writes and the body of a 404. The views need all three: -o
// json prints the objects as the server sent them, writes print the
// server's messages, and a 404 names what was not found.
type bodyRecorder struct {
	base http.RoundTripper

	mu     sync.Mutex
	bodies [][]byte
}

func (r *bodyRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAPIBody))
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.bodies = append(r.bodies, body)
	r.mu.Unlock()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}

// take returns the bodies of the answers since the last take, oldest
// first, and forgets them, so that a later call never reports an earlier
// answer.
func (r *bodyRecorder) take() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	b := r.bodies
	r.bodies = nil
	return b
}

// lastBody is the body of the latest answer (see take).
func (r *bodyRecorder) lastBody() []byte {
	b := r.take()
	if len(b) == 0 {
		return nil
	}
	return b[len(b)-1]
}

// fail turns what golinstor returned into the error the user sees.
func (a *apiConn) fail(err error) error {
	var rcs lc.ApiCallError
	switch {
	case errors.As(err, &rcs):
		return apiCallError(rcs)
	case errors.Is(err, lc.NotFoundError):
		// golinstor drops the body of a 404; the server's list says what
		// is missing.
		if rcs := a.lastRCs(); len(rcs) > 0 {
			return apiCallError(rcs)
		}
		return errors.New("the controller answered 404 Not Found; check the names given")
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	}
	var ue *url.Error
	var ne net.Error
	if errors.As(err, &ue) || errors.As(err, &ne) {
		return fmt.Errorf("no controller answered (tried %s): %w\n"+
			"Check that pvehci runs there, or name reachable controllers with --controllers or LS_CONTROLLERS, e.g. --controllers 10.0.0.1,10.0.0.2",
			strings.Join(a.urls, ", "), err)
	}
	return fmt.Errorf("unexpected answer from the controller: %w", err)
}

// lastRCs decodes the last answer as an ApiCallRc list, if it is one.
func (a *apiConn) lastRCs() []lc.ApiCallRc {
	var rcs []lc.ApiCallRc
	if err := json.Unmarshal(a.rec.lastBody(), &rcs); err != nil {
		return nil
	}
	return rcs
}

// apiCallError formats the server's error list the way the linstor
// client does: the message, then why and what to do.
func apiCallError(rcs []lc.ApiCallRc) error {
	var b strings.Builder
	for i, rc := range rcs {
		if i > 0 {
			b.WriteString("\n")
		}
		writeRC(&b, rc, i > 0)
	}
	return errors.New(b.String())
}

// writeRC writes one ApiCallRc; tagged adds the ERROR/WARNING/INFO/SUCCESS
// prefix (the first error of a failure gets "pvehci:" from Main instead).
func writeRC(w io.Writer, rc lc.ApiCallRc, tagged bool) {
	if tagged {
		fmt.Fprintf(w, "%s: ", severity(rc))
	}
	fmt.Fprint(w, rc.Message)
	for _, f := range []struct{ name, text string }{
		{"Cause", rc.Cause}, {"Details", rc.Details}, {"Correction", rc.Correction},
	} {
		if t := strings.TrimSpace(f.text); t != "" {
			fmt.Fprintf(w, "\n  %s: %s", f.name, strings.ReplaceAll(t, "\n", "\n    "))
		}
	}
	if len(rc.ErrorReportIds) > 0 {
		fmt.Fprintf(w, "\n  Error reports: %s", strings.Join(rc.ErrorReportIds, ", "))
	}
}

func severity(rc lc.ApiCallRc) string {
	switch uint64(rc.RetCode) & linstor.MaskError {
	case linstor.MaskError:
		return "ERROR"
	case linstor.MaskWarn:
		return "WARNING"
	case linstor.MaskInfo:
		return "INFO"
	}
	return "SUCCESS"
}

// checkOutput rejects an unknown --output before anything is sent, so a
// typo never half-runs a command.
func checkOutput(c *ucli.Command) (string, error) {
	switch f := c.String("output"); f {
	case "text", "json":
		return f, nil
	default:
		return "", usageError{fmt.Errorf("--output %q is not a format pvehci writes; use text or json", f)}
	}
}

// reportWrite prints what the server said about a write: its ApiCallRc
// list as the linstor client prints it, or, with -o json, the list as
// sent. fallback is printed when the server sent no messages.
func (a *apiConn) reportWrite(e env, format, fallback string) error {
	// A command may make several writes (a group and its volume group);
	// report them all, in order.
	rcs := []lc.ApiCallRc{}
	for _, body := range a.rec.take() {
		var more []lc.ApiCallRc
		if json.Unmarshal(body, &more) == nil {
			rcs = append(rcs, more...)
		}
	}
	if format == "json" {
		b, err := json.MarshalIndent(rcs, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(e.stdout, "%s\n", b)
		return err
	}
	if len(rcs) == 0 {
		_, err := fmt.Fprintln(e.stdout, fallback)
		return err
	}
	for _, rc := range rcs {
		writeRC(e.stdout, rc, true)
		fmt.Fprintln(e.stdout)
	}
	return nil
}

// yesFlag is the --yes of destructive commands.
func yesFlag() ucli.Flag {
	return &ucli.BoolFlag{Name: "yes", Aliases: []string{"y"}, Usage: "do not ask for confirmation"}
}

// confirmDestructive asks on a terminal. Without one (a script, cron,
// stdin from /dev/null) it refuses rather than guess, so that automation
// has to say --yes. It checks for a real terminal, not just a character
// device, because /dev/null is one too.
func confirmDestructive(e env, question string) error {
	if !isTerminal(os.Stdin) {
		return usageError{errors.New("this deletes data, and there is no terminal to ask for confirmation on; add --yes")}
	}
	fmt.Fprintf(e.stderr, "%s [y/N] ", question)
	line, err := bufio.NewReader(os.Stdin).ReadString('\n')
	if err != nil && err != io.EOF {
		return err
	}
	if a := strings.ToLower(strings.TrimSpace(line)); a != "y" && a != "yes" {
		return errors.New("not confirmed; nothing changed")
	}
	return nil
}

// needArgs checks the positional arguments; names describes them for the
// message.
func needArgs(c *ucli.Command, names ...string) ([]string, error) {
	if c.Args().Len() != len(names) {
		return nil, usageError{fmt.Errorf("%s needs %d argument(s): %s (got %d)",
			c.FullName(), len(names), strings.Join(names, " "), c.Args().Len())}
	}
	return c.Args().Slice(), nil
}

// noArgs rejects stray arguments of the list commands, which take none.
func noArgs(c *ucli.Command) error {
	if c.Args().Present() {
		return usageError{fmt.Errorf("%s takes no arguments (got %q)", c.FullName(), c.Args().First())}
	}
	return nil
}
