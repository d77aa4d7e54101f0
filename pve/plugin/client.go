package plugin

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/pvehci/pvehci/internal/clock"
)

// UserAgent is the default User-Agent: the plugin's own, so that server
// logs and request metrics cannot tell the emulation from the plugin.
const UserAgent = "linstor-proxmox/8.3.0"

// Client is one drbd storage as storage.cfg configures it, seen from the
// node that runs the hooks. The zero values of the boolean options are the
// plugin's defaults (§5): preferlocal yes, exactsize no, allowtwoprimaries
// yes.
type Client struct {
	// Controllers are base URLs such as http://127.0.0.11:3370, tried in
	// order (storage.cfg controller, with the port the plugin hard-codes).
	Controllers []string
	// HTTP sends the requests; default http.DefaultClient.
	HTTP *http.Client
	// ResourceGroup is storage.cfg resourcegroup; default "drbdgrp".
	ResourceGroup string
	// NoPreferLocal is preferlocal no: spawn places the replicas itself.
	NoPreferLocal bool
	// ExactSize is exactsize yes.
	ExactSize bool
	// NoTwoPrimaries is allowtwoprimaries no (disables live migration).
	NoTwoPrimaries bool
	// Token, when set, is sent as Authorization: Bearer (the plugin's
	// /var/lib/linstor.d/auth.json).
	Token string
	// UserAgent defaults to [UserAgent].
	UserAgent string
	// Rand gives the pm-<8 hex> names; default crypto/rand.
	Rand io.Reader
	// Clock paces free_image's in-use polling; default real time.
	Clock clock.Clock
	// DeviceExists reports whether a device node exists on the node that
	// runs the hook. The plugin asks the API for a device path only when
	// /dev/drbd/by-res/<rd>/0 is missing; nil means "always missing", which
	// is the case wherever the emulation does not run on the PVE node.
	DeviceExists func(path string) bool
	// Logger receives the warnings the plugin prints and carries on after.
	Logger *slog.Logger
}

// Error is a request the plugin would die on: a status other than the one
// it demands. Message holds the ApiCallRc messages when the body has them.
type Error struct {
	Method, Path string
	Status, Want int
	Message      string
}

func (e *Error) Error() string {
	msg := e.Message
	if msg == "" {
		msg = "no ApiCallRc message"
	}
	return fmt.Sprintf("%s %s: status %d, want %d: %s", e.Method, e.Path, e.Status, e.Want, msg)
}

// ErrNoController is returned when no controller answers /health with 200.
var ErrNoController = errors.New("could not connect to any LINSTOR controller")

var (
	pmName      = regexp.MustCompile(`^(pm-[0-9a-f]{8})_(\d+)$`)
	vmName      = regexp.MustCompile(`^vm-(\d+)-[a-z][a-z0-9._-]*[a-z0-9]+$`)
	untaintPath = regexp.MustCompile(`^/dev/[a-zA-Z0-9/_-]+$`)
)

// ParseVolname splits a PVE volume name into the LINSTOR resource
// definition it names and the owning vmid (§6): pm-xxxxxxxx_<vmid> is
// definition pm-xxxxxxxx, vm-<vmid>-… is used as it is.
func ParseVolname(volname string) (rd string, vmid int, err error) {
	if m := pmName.FindStringSubmatch(volname); m != nil {
		vmid, err = strconv.Atoi(m[2])
		return m[1], vmid, err
	}
	if m := vmName.FindStringSubmatch(volname); m != nil {
		vmid, err = strconv.Atoi(m[1])
		return volname, vmid, err
	}
	return "", 0, fmt.Errorf("unable to parse volume name %q", volname)
}

// ByResPath is the udev link the plugin hands to QEMU for a definition.
func ByResPath(rd string) string { return "/dev/drbd/by-res/" + rd + "/0" }

// conn is one hook's connection: the controller that answered /health.
type conn struct {
	c    *Client
	base string
}

func (c *Client) httpClient() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return http.DefaultClient
}

func (c *Client) rg() string {
	if c.ResourceGroup == "" {
		return "drbdgrp"
	}
	return c.ResourceGroup
}

func (c *Client) log() *slog.Logger {
	if c.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Logger
}

// connect is the plugin's per-hook client construction (§2): GET /health
// on each controller in order; a connection error or any status but 200
// moves on to the next.
func (c *Client) connect(ctx context.Context) (*conn, error) {
	var errs []error
	for _, base := range c.Controllers {
		cn := &conn{c: c, base: strings.TrimRight(base, "/")}
		status, _, err := cn.send(ctx, http.MethodGet, "/health", nil)
		if err == nil && status == http.StatusOK {
			return cn, nil
		}
		if err == nil {
			err = fmt.Errorf("%s: /health status %d", base, status)
		}
		errs = append(errs, err)
	}
	return nil, fmt.Errorf("%w: %w", ErrNoController, errors.Join(errs...))
}

// send makes one request the way the plugin's REST client does: JSON
// body without Content-Type, a new connection each time.
func (cn *conn) send(ctx context.Context, method, path string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, fmt.Errorf("encode %s %s: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, cn.base+path, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Close = true // Connection: close, as the plugin's LWP client sends
	ua := cn.c.UserAgent
	if ua == "" {
		ua = UserAgent
	}
	req.Header.Set("User-Agent", ua)
	if cn.c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+cn.c.Token)
	}
	resp, err := cn.c.httpClient().Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, nil, fmt.Errorf("read %s %s: %w", method, path, err)
	}
	return resp.StatusCode, b, nil
}

// call sends a request and demands status want; out, when non-nil,
// receives the decoded answer.
func (cn *conn) call(ctx context.Context, method, path string, body any, want int, out any) error {
	status, b, err := cn.send(ctx, method, path, body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if status != want {
		return &Error{Method: method, Path: path, Status: status, Want: want, Message: apiMessage(b)}
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("decode %s %s: %w", method, path, err)
		}
	}
	return nil
}

// apiMessage joins the messages of an ApiCallRc list, or returns the
// trimmed body when it is not one.
func apiMessage(b []byte) string {
	var rcs []struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(b, &rcs) == nil {
		var msgs []string
		for _, r := range rcs {
			if r.Message != "" {
				msgs = append(msgs, r.Message)
			}
		}
		if len(msgs) > 0 {
			return strings.Join(msgs, "; ")
		}
	}
	s := strings.TrimSpace(string(b))
	if len(s) > 512 {
		s = s[:512] + "…"
	}
	return s
}

// viewResource is what the plugin reads of a /v1/view/resources entry
// (§3.2, §3.3).
type viewResource struct {
	Name     string `json:"name"`
	NodeName string `json:"node_name"`
	State    struct {
		InUse bool `json:"in_use"`
	} `json:"state"`
	Volumes []struct {
		ProviderKind string `json:"provider_kind"`
		DevicePath   string `json:"device_path"`
	} `json:"volumes"`
}

func (v viewResource) providerKind() string {
	if len(v.Volumes) == 0 {
		return ""
	}
	return v.Volumes[0].ProviderKind
}

func (cn *conn) view(ctx context.Context, query string) ([]viewResource, error) {
	var out []viewResource
	err := cn.call(ctx, http.MethodGet, "/v1/view/resources"+query, nil, http.StatusOK, &out)
	return out, err
}

// find returns the first entry for (rd, node), as the plugin keeps only
// the first per pair.
func find(view []viewResource, rd, node string) (viewResource, bool) {
	for _, v := range view {
		if v.Name == rd && v.NodeName == node {
			return v, true
		}
	}
	return viewResource{}, false
}

// AllocImage is alloc_image for a new disk of sizeKiB on node: it spawns a
// pm-xxxxxxxx definition from the resource group and returns the PVE
// volume name pm-xxxxxxxx_<vmid> (§4 alloc_image, §6 names).
func (c *Client) AllocImage(ctx context.Context, vmid int, sizeKiB int64, node string) (string, error) {
	volname, err := c.allocImage(ctx, vmid, sizeKiB, node)
	if err != nil {
		return "", fmt.Errorf("alloc image for vm %d on %s: %w", vmid, node, err)
	}
	return volname, nil
}

func (c *Client) allocImage(ctx context.Context, vmid int, sizeKiB int64, node string) (string, error) {
	cn, err := c.connect(ctx)
	if err != nil {
		return "", err
	}
	view, err := cn.view(ctx, "")
	if err != nil {
		return "", err
	}
	rd, err := c.freeName(view)
	if err != nil {
		return "", err
	}
	rg := url.PathEscape(c.rg())
	// The NVMe check (§3.9): a failed GET is ignored, as in the plugin.
	var group struct {
		SelectFilter struct {
			LayerStack []string `json:"layer_stack"`
			PlaceCount int      `json:"place_count"`
		} `json:"select_filter"`
	}
	if cn.call(ctx, http.MethodGet, "/v1/resource-groups/"+rg, nil, http.StatusOK, &group) == nil {
		for _, l := range group.SelectFilter.LayerStack {
			if strings.EqualFold(l, "NVME") && group.SelectFilter.PlaceCount > 1 {
				return "", fmt.Errorf("resource group %s: the NVMe layer allows a place count of 1, not %d",
					c.rg(), group.SelectFilter.PlaceCount)
			}
		}
	}
	spawn := map[string]any{
		"resource_definition_name": rd,
		"volume_sizes":             []int64{sizeKiB},
		"definitions_only":         !c.NoPreferLocal,
		"resource_definition_props": map[string]string{
			"DrbdOptions/ExactSize":               yesNo(c.ExactSize, "True", "False"),
			"DrbdOptions/Net/allow-two-primaries": yesNo(!c.NoTwoPrimaries, "yes", "no"),
		},
	}
	if err := cn.call(ctx, http.MethodPost, "/v1/resource-groups/"+rg+"/spawn", spawn, http.StatusCreated, nil); err != nil {
		return "", err
	}
	if !c.NoPreferLocal {
		// A local diskful replica first; the plugin carries on to
		// autoplace when this fails (a node without a suitable pool).
		p := rdPath(rd) + "/resources/" + url.PathEscape(node) + "/make-available"
		if err := cn.call(ctx, http.MethodPost, p, map[string]bool{"diskful": true}, http.StatusOK, nil); err != nil {
			c.log().Warn("diskful assignment failed, autoplacing", "resource", rd, "node", node, "err", err)
		}
		if err := cn.call(ctx, http.MethodPost, rdPath(rd)+"/autoplace", struct{}{}, http.StatusCreated, nil); err != nil {
			return "", err
		}
	}
	if err := cn.setVMID(ctx, rd, vmid); err != nil {
		return "", err
	}
	return rd + "_" + strconv.Itoa(vmid), nil
}

// freeName picks pm-<8 hex> not used by any resource in the view, with
// the plugin's bound of 99 tries.
func (c *Client) freeName(view []viewResource) (string, error) {
	r := c.Rand
	if r == nil {
		r = rand.Reader
	}
	used := map[string]bool{}
	for _, v := range view {
		used[v.Name] = true
	}
	for range 99 {
		var b [4]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return "", fmt.Errorf("random name: %w", err)
		}
		if name := "pm-" + hex.EncodeToString(b[:]); !used[name] {
			return name, nil
		}
	}
	return "", errors.New("no free pm- name after 99 tries")
}

// setVMID is set_vmid (§3.7): the owner property, sent as a string.
func (cn *conn) setVMID(ctx context.Context, rd string, vmid int) error {
	body := map[string]any{"override_props": map[string]string{"Aux/pm/vmid": strconv.Itoa(vmid)}}
	return cn.call(ctx, http.MethodPut, rdPath(rd), body, http.StatusOK, nil)
}

func rdPath(rd string) string { return "/v1/resource-definitions/" + url.PathEscape(rd) }

func yesNo(b bool, yes, no string) string {
	if b {
		return yes
	}
	return no
}

// ActivateVolume is activate_volume on node followed by path (what PVE
// does before starting QEMU there): make-available diskful:false, which
// gives a diskless client where the node has no replica, then the device
// path (§4 activate_volume and path).
func (c *Client) ActivateVolume(ctx context.Context, volname, node string) (string, error) {
	if err := c.activate(ctx, volname, node); err != nil {
		return "", fmt.Errorf("activate %s on %s: %w", volname, node, err)
	}
	return c.Path(ctx, volname, node)
}

func (c *Client) activate(ctx context.Context, volname, node string) error {
	rd, _, err := ParseVolname(volname)
	if err != nil {
		return err
	}
	cn, err := c.connect(ctx)
	if err != nil {
		return err
	}
	if !c.ExactSize {
		// The plugin resets ExactSize on every activation and ignores
		// failures.
		body := map[string]any{"override_props": map[string]string{"DrbdOptions/ExactSize": "False"}}
		if err := cn.call(ctx, http.MethodPut, rdPath(rd), body, http.StatusOK, nil); err != nil {
			c.log().Warn("resetting ExactSize failed", "resource", rd, "err", err)
		}
	}
	if cn.usesNVMe(ctx, rd) {
		body := map[string]any{"resource": map[string]any{"flags": []string{"DISKLESS", "NVME_INITIATOR"}}}
		return cn.call(ctx, http.MethodPost, rdPath(rd)+"/resources/"+url.PathEscape(node), body, http.StatusCreated, nil)
	}
	p := rdPath(rd) + "/resources/" + url.PathEscape(node) + "/make-available"
	return cn.call(ctx, http.MethodPost, p, map[string]bool{"diskful": false}, http.StatusOK, nil)
}

// usesNVMe is resource_uses_nvme (§3.5): any failure means "no".
func (cn *conn) usesNVMe(ctx context.Context, rd string) bool {
	var def struct {
		LayerData []struct {
			Type string `json:"type"`
		} `json:"layer_data"`
	}
	if cn.call(ctx, http.MethodGet, rdPath(rd), nil, http.StatusOK, &def) != nil {
		return false
	}
	for _, l := range def.LayerData {
		if strings.EqualFold(l.Type, "NVME") {
			return true
		}
	}
	return false
}

// Path is the path/filesystem_path hook: the by-res link when it exists
// on the node, otherwise volumes[0].device_path from the filtered view
// (§3.3, §4 path).
func (c *Client) Path(ctx context.Context, volname, node string) (string, error) {
	rd, _, err := ParseVolname(volname)
	if err != nil {
		return "", fmt.Errorf("path of %s: %w", volname, err)
	}
	if link := ByResPath(rd); c.DeviceExists != nil && c.DeviceExists(link) {
		return link, nil
	}
	dev, err := c.apiPath(ctx, rd, node)
	if err != nil {
		return "", fmt.Errorf("path of %s on %s: %w", volname, node, err)
	}
	return dev, nil
}

func (c *Client) apiPath(ctx context.Context, rd, node string) (string, error) {
	cn, err := c.connect(ctx)
	if err != nil {
		return "", err
	}
	// The plugin looks the resource up twice before the filtered query.
	for range 2 {
		view, err := cn.view(ctx, "")
		if err != nil {
			return "", err
		}
		if _, ok := find(view, rd, node); !ok {
			return "", fmt.Errorf("resource %s does not exist on %s", rd, node)
		}
	}
	q := "?" + url.Values{"resources": {rd}, "nodes": {node}}.Encode()
	view, err := cn.view(ctx, q)
	if err != nil {
		return "", err
	}
	v, ok := find(view, rd, node)
	if !ok || len(v.Volumes) == 0 {
		return "", fmt.Errorf("no volume 0 of %s on %s in the view", rd, node)
	}
	dev := v.Volumes[0].DevicePath
	if !untaintPath.MatchString(dev) {
		return "", fmt.Errorf("device path %q of %s on %s is not a /dev path", dev, rd, node)
	}
	return dev, nil
}

// DeactivateVolume is deactivate_volume on node (§4, §8): it deletes the
// node's resource only when it is DISKLESS, with keep_tiebreaker=True so
// the controller may keep it as a quorum tie-breaker; a diskful replica
// stays. As since plugin 8.3, an unreachable controller is a warning, not
// an error.
func (c *Client) DeactivateVolume(ctx context.Context, volname, node string) error {
	if err := c.deactivate(ctx, volname, node); err != nil {
		return fmt.Errorf("deactivate %s on %s: %w", volname, node, err)
	}
	return nil
}

func (c *Client) deactivate(ctx context.Context, volname, node string) error {
	rd, _, err := ParseVolname(volname)
	if err != nil {
		return err
	}
	cn, err := c.connect(ctx)
	if errors.Is(err, ErrNoController) {
		c.log().Warn("no controller reachable, skipping deactivation", "volume", volname, "node", node, "err", err)
		return nil
	}
	if err != nil {
		return err
	}
	view, err := cn.view(ctx, "")
	if err != nil {
		return err
	}
	if v, ok := find(view, rd, node); !ok || !strings.EqualFold(v.providerKind(), "DISKLESS") {
		return nil
	}
	// delete_resource checks existence once more before deleting.
	view, err = cn.view(ctx, "")
	if err != nil {
		return err
	}
	if _, ok := find(view, rd, node); !ok {
		return nil
	}
	p := rdPath(rd) + "/resources/" + url.PathEscape(node) + "?keep_tiebreaker=True"
	return cn.call(ctx, http.MethodDelete, p, nil, http.StatusOK, nil)
}

// FreeImage is free_image (§4): wait up to 10 s while the definition is
// in use, then delete the whole definition if it has any resource. Like
// the plugin it deletes even when the wait ran out.
func (c *Client) FreeImage(ctx context.Context, volname string) error {
	if err := c.freeImage(ctx, volname); err != nil {
		return fmt.Errorf("free image %s: %w", volname, err)
	}
	return nil
}

func (c *Client) freeImage(ctx context.Context, volname string) error {
	rd, _, err := ParseVolname(volname)
	if err != nil {
		return err
	}
	cn, err := c.connect(ctx)
	if err != nil {
		return err
	}
	clk := c.Clock
	if clk == nil {
		clk = clock.Real{}
	}
	for i := range 10 {
		view, err := cn.view(ctx, "")
		if err != nil {
			return err
		}
		if !inUse(view, rd) {
			break
		}
		if i < 9 {
			if err := clk.Sleep(ctx, time.Second); err != nil {
				return err
			}
		}
	}
	view, err := cn.view(ctx, "")
	if err != nil {
		return err
	}
	exists := false
	for _, v := range view {
		exists = exists || v.Name == rd
	}
	if !exists {
		return nil // the plugin leaves a definition without resources alone
	}
	return cn.call(ctx, http.MethodDelete, rdPath(rd), nil, http.StatusOK, nil)
}

// inUse is the plugin's per-definition in_use: the last entry listed for
// the definition wins, it is not an OR over nodes (§3.2).
func inUse(view []viewResource, rd string) bool {
	use := false
	for _, v := range view {
		if v.Name == rd {
			use = v.State.InUse
		}
	}
	return use
}

// ResizeVolume is volume_resize (§3.14): volume 0 grows to sizeBytes.
// Perl divides by 1024 without rounding, so a size that is not a whole
// KiB is sent as a fraction, as the plugin sends it.
func (c *Client) ResizeVolume(ctx context.Context, volname string, sizeBytes int64) error {
	rd, _, err := ParseVolname(volname)
	if err != nil {
		return fmt.Errorf("resize %s: %w", volname, err)
	}
	cn, err := c.connect(ctx)
	if err != nil {
		return fmt.Errorf("resize %s: %w", volname, err)
	}
	var size any = sizeBytes / 1024
	if sizeBytes%1024 != 0 {
		size = float64(sizeBytes) / 1024
	}
	body := map[string]any{"size_kib": size}
	if err := cn.call(ctx, http.MethodPut, rdPath(rd)+"/volume-definitions/0", body, http.StatusOK, nil); err != nil {
		return fmt.Errorf("resize %s: %w", volname, err)
	}
	return nil
}

// Status is the storage's capacity as the status hook reads it (§3.16),
// without the plugin's on-disk cache: ok is false when the controller
// does not report the resource group, which PVE shows as an inactive
// storage.
func (c *Client) Status(ctx context.Context) (totalKiB, availKiB int64, ok bool, err error) {
	cn, err := c.connect(ctx)
	if err != nil {
		return 0, 0, false, fmt.Errorf("storage status: %w", err)
	}
	var out struct {
		Result map[string]struct {
			SpaceInfo struct {
				Capacity  int64 `json:"capacity_in_kib"`
				Available int64 `json:"available_size_in_kib"`
			} `json:"space_info"`
		} `json:"result"`
	}
	body := map[string]int{"ignore_cache_older_than_sec": 60}
	if err := cn.call(ctx, http.MethodPost, "/v1/queries/resource-groups/query-all-size-info", body, http.StatusOK, &out); err != nil {
		return 0, 0, false, fmt.Errorf("storage status: %w", err)
	}
	r, ok := out.Result[c.rg()]
	return r.SpaceInfo.Capacity, r.SpaceInfo.Available, ok, nil
}
