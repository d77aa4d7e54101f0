package metrics

import (
	"bytes"
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestDashboardNamesExportedMetrics decodes docs/monitoring/pvehci-dashboard.json
// and checks that it imports as a Grafana dashboard, that every panel is
// complete and placed, and that its queries name only metrics the
// monitoring docs list as exported, so that a renamed metric breaks this
// test rather than a user's panel.
func TestDashboardNamesExportedMetrics(t *testing.T) {
	data, err := os.ReadFile("../../docs/monitoring/pvehci-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile("../../docs/monitoring/README.md")
	if err != nil {
		t.Fatal(err)
	}
	type datasource struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	}
	type gridPos struct {
		H, W, X, Y int
	}
	var dash struct {
		Inputs []struct {
			Name     string `json:"name"`
			Type     string `json:"type"`
			PluginID string `json:"pluginId"`
		} `json:"__inputs"`
		UID           string `json:"uid"`
		Title         string `json:"title"`
		SchemaVersion int    `json:"schemaVersion"`
		Panels        []struct {
			ID         int         `json:"id"`
			Type       string      `json:"type"`
			Title      string      `json:"title"`
			GridPos    *gridPos    `json:"gridPos"`
			Datasource *datasource `json:"datasource"`
			Targets    []struct {
				Expr       string      `json:"expr"`
				RefID      string      `json:"refId"`
				Datasource *datasource `json:"datasource"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Name       string      `json:"name"`
				Datasource *datasource `json:"datasource"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.NewDecoder(bytes.NewReader(data)).Decode(&dash); err != nil {
		t.Fatalf("decoding the dashboard: %v", err)
	}
	if dash.UID != "pvehci-storage" || dash.Title == "" || dash.SchemaVersion != 39 {
		t.Errorf("uid %q, title %q, schemaVersion %d; want pvehci-storage, a title, 39", dash.UID, dash.Title, dash.SchemaVersion)
	}
	if len(dash.Inputs) != 1 || dash.Inputs[0].Name != "DS_PROMETHEUS" || dash.Inputs[0].Type != "datasource" || dash.Inputs[0].PluginID != "prometheus" {
		t.Errorf("__inputs %+v, want the one Prometheus data source DS_PROMETHEUS", dash.Inputs)
	}
	const ds = "${DS_PROMETHEUS}"
	isProm := func(d *datasource) bool { return d != nil && d.Type == "prometheus" && d.UID == ds }
	for _, v := range dash.Templating.List {
		if !isProm(v.Datasource) {
			t.Errorf("variable %s does not query %s", v.Name, ds)
		}
	}

	metric := regexp.MustCompile(`\b(?:linstor|pvehci)_[a-z_]+`)
	ids := map[int]string{}
	// Grafana stacks overlapping panels unpredictably; a cell taken twice
	// is a layout mistake.
	taken := map[[2]int]string{}
	queries := 0
	for _, p := range dash.Panels {
		if p.Title == "" {
			t.Errorf("panel %d (%s) has no title", p.ID, p.Type)
		}
		if other, dup := ids[p.ID]; dup || p.ID <= 0 {
			t.Errorf("panel %q has id %d, also used by %q (ids must be unique and positive)", p.Title, p.ID, other)
		}
		ids[p.ID] = p.Title
		if g := p.GridPos; g == nil || g.W <= 0 || g.H <= 0 || g.X < 0 || g.Y < 0 || g.X+g.W > 24 {
			t.Errorf("panel %q: gridPos %+v is missing or outside the 24 columns", p.Title, p.GridPos)
		} else {
			for x := g.X; x < g.X+g.W; x++ {
				for y := g.Y; y < g.Y+g.H; y++ {
					if other, ok := taken[[2]int{x, y}]; ok {
						t.Errorf("panel %q overlaps %q at x=%d y=%d", p.Title, other, x, y)
					}
					taken[[2]int{x, y}] = p.Title
				}
			}
		}
		if p.Type == "row" {
			continue // a row only groups the panels below it
		}
		if !isProm(p.Datasource) {
			t.Errorf("panel %q: datasource %+v, want %s", p.Title, p.Datasource, ds)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		refs := map[string]bool{}
		for _, q := range p.Targets {
			queries++
			if strings.TrimSpace(q.Expr) == "" {
				t.Errorf("panel %q: query %s has no expr", p.Title, q.RefID)
			}
			if q.RefID == "" || refs[q.RefID] {
				t.Errorf("panel %q: refId %q is empty or repeated", p.Title, q.RefID)
			}
			refs[q.RefID] = true
			if !isProm(q.Datasource) {
				t.Errorf("panel %q: query %s has datasource %+v, want %s", p.Title, q.RefID, q.Datasource, ds)
			}
			names := metric.FindAllString(q.Expr, -1)
			if len(names) == 0 {
				t.Errorf("panel %q names no pvehci or LINSTOR metric: %s", p.Title, q.Expr)
			}
			for _, n := range names {
				if !strings.Contains(string(doc), "`"+n+"`") {
					t.Errorf("panel %q uses %s, which docs/monitoring/README.md does not list", p.Title, n)
				}
			}
		}
	}
	if queries < 10 {
		t.Errorf("only %d queries", queries)
	}
}
