package pveapi

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// Client reads a PVE cluster's API.
type Client struct {
	// BaseURL is https://NODE:8006 (without /api2/json).
	BaseURL string
	// Token is USER@REALM!TOKENID=SECRET, sent as
	// "Authorization: PVEAPIToken=<Token>".
	Token string
	HTTP  *http.Client
}

// New returns a client; caFile, when set, is the PEM the API's certificate
// chains to (/etc/pve/pve-root-ca.pem on a node).
func New(baseURL, token, caFile string) (*Client, error) {
	hc := &http.Client{Timeout: 10 * time.Second}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("reading the PVE CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("the PVE CA file %s holds no PEM certificate", caFile)
		}
		hc.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	}
	return &Client{BaseURL: strings.TrimRight(baseURL, "/"), Token: token, HTTP: hc}, nil
}

// VM is where one VM runs, as relocation needs it.
type VM struct {
	VMID string
	Node string
	// PreviousNode is the source of its last finished migration.
	PreviousNode string
	// Migrating is set while a migration task runs or the config holds
	// lock "migrate".
	Migrating bool
	// Since is when its last migration ended (zero when unknown).
	Since time.Time
}

// VMs returns every VM (qemu and lxc) with its place.
func (c *Client) VMs(ctx context.Context) (map[string]VM, error) {
	var resources []struct {
		Type string `json:"type"`
		VMID num    `json:"vmid"`
		Node string `json:"node"`
		Lock string `json:"lock"`
	}
	if err := c.get(ctx, "/cluster/resources?type=vm", &resources); err != nil {
		return nil, err
	}
	var tasks []struct {
		Node      string `json:"node"`
		Type      string `json:"type"`
		ID        string `json:"id"`
		EndTime   num    `json:"endtime"`
		StartTime num    `json:"starttime"`
		Status    string `json:"status"`
	}
	if err := c.get(ctx, "/cluster/tasks", &tasks); err != nil {
		return nil, err
	}
	out := map[string]VM{}
	for _, r := range resources {
		if r.Type != "qemu" && r.Type != "lxc" {
			continue
		}
		id := strconv.FormatInt(int64(r.VMID), 10)
		out[id] = VM{VMID: id, Node: r.Node, Migrating: r.Lock == "migrate"}
	}
	// /cluster/tasks is newest first, but do not rely on it: keep the
	// latest finished migration per VM by end time.
	for _, t := range tasks {
		if t.Type != "qmigrate" && t.Type != "hamigrate" && t.Type != "vzmigrate" {
			continue
		}
		vm, ok := out[t.ID]
		if !ok {
			continue
		}
		if t.EndTime == 0 {
			vm.Migrating = true
		} else if end := time.Unix(int64(t.EndTime), 0); t.Status == "OK" && end.After(vm.Since) && t.Node != vm.Node {
			vm.PreviousNode, vm.Since = t.Node, end
		}
		out[t.ID] = vm
	}
	return out, nil
}

func (c *Client) get(ctx context.Context, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.BaseURL+"/api2/json"+path, nil)
	if err != nil {
		return err
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "PVEAPIToken="+c.Token)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("PVE API GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("PVE API GET %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		hint := ""
		if resp.StatusCode == http.StatusUnauthorized {
			hint = "; check the API token (USER@REALM!TOKENID=SECRET) and that it has PVEAuditor on /"
		}
		return fmt.Errorf("PVE API GET %s: %s: %s%s", path, resp.Status, strings.TrimSpace(string(body)), hint)
	}
	var wrap struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &wrap); err != nil {
		return fmt.Errorf("PVE API GET %s: %w", path, err)
	}
	if err := json.Unmarshal(wrap.Data, out); err != nil {
		return fmt.Errorf("PVE API GET %s: decoding data: %w", path, err)
	}
	return nil
}

// num decodes a JSON number or a string holding one, as PVE sends both.
type num int64

func (n *num) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "" || s == "null" {
		*n = 0
		return nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return fmt.Errorf("not a number: %s", b)
	}
	*n = num(v)
	return nil
}
