package chart

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	// What cmd/ links, so the registry holds every metric the binary serves:
	// internal/metering registers meshstack_metering_*, controller-runtime
	// (through internal/operator) controller_runtime_*, workqueue_*,
	// leader_election_master_status, rest_client_* and the Go and process
	// collectors.
	_ "github.com/meshcloud/meshstack-operator/internal/metering"
	_ "github.com/meshcloud/meshstack-operator/internal/operator"
	"github.com/meshcloud/meshstack-operator/test/framework"
)

const (
	ruleName      = "PrometheusRule/meshstack-operator"
	dashboardName = "ConfigMap/meshstack-operator-dashboard"
	dashboardFile = "meshstack-operator.json"
)

// histogramVecs are the histogram vectors controller-runtime v0.25.2
// registers (pkg/internal/controller/metrics, pkg/internal/metrics,
// pkg/client, pkg/metrics, pkg/webhook/internal/metrics). The registry only
// gathers a vector once it has a child, that is once a controller, a client
// or a webhook ran, so their type is taken from the source. Whether one is
// registered at all is still asked of the registry.
var histogramVecs = []string{
	"controller_runtime_reconcile_time_seconds",
	"controller_runtime_client_consistency_wait_duration_seconds",
	"controller_runtime_webhook_latency_seconds",
	"workqueue_queue_duration_seconds",
	"workqueue_work_duration_seconds",
	"rest_client_request_duration_seconds",
	"rest_client_dns_resolution_duration_seconds",
	"rest_client_rate_limiter_duration_seconds",
	"rest_client_request_size_bytes",
	"rest_client_response_size_bytes",
}

// registered tells whether the binary's registry has a metric of this name,
// gathered or not (a vector without children is not gathered): registering
// a probe of the same name fails exactly then.
func registered(name string) bool {
	probe := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: "A probe of test/chart."})
	if err := ctrlmetrics.Registry.Register(probe); err != nil {
		return true
	}
	ctrlmetrics.Registry.Unregister(probe)
	return false
}

// metricType is the type of a registered metric: from the registry when it
// gathers it, else from histogramVecs ("" for another vector).
func metricType(t *testing.T, name string) string {
	t.Helper()
	families, err := ctrlmetrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name {
			return f.GetType().String()
		}
	}
	if slices.Contains(histogramVecs, name) {
		return "HISTOGRAM"
	}
	return ""
}

// unknownMetrics returns, for each expression, the series names it selects
// that the binary does not export: a name must be a registered metric that
// is not a histogram or summary, or a histogram's _bucket, _sum or _count (a
// summary's _sum or _count).
func unknownMetrics(t *testing.T, exprs []string) []string {
	t.Helper()
	typeOf := func(name string) (string, bool) {
		if !registered(name) {
			return "", false
		}
		return metricType(t, name), true
	}
	var unknown []string
	for _, expr := range exprs {
		names, err := metricNames(expr)
		if err != nil {
			t.Errorf("%s: %v", expr, err)
			continue
		}
		for _, name := range names {
			if typ, ok := typeOf(name); ok {
				if typ != "HISTOGRAM" && typ != "SUMMARY" {
					continue
				}
				unknown = append(unknown, fmt.Sprintf("%s (a %s: use its _bucket, _sum or _count) in %s", name, strings.ToLower(typ), expr))
				continue
			}
			known := false
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				base, found := strings.CutSuffix(name, suffix)
				if !found {
					continue
				}
				typ, ok := typeOf(base)
				known = ok && (typ == "HISTOGRAM" || typ == "SUMMARY" && suffix != "_bucket")
			}
			if !known {
				unknown = append(unknown, fmt.Sprintf("%s in %s", name, expr))
			}
		}
	}
	return unknown
}

// promqlKeywords are PromQL's words that are not metrics: operators,
// modifiers, aggregations (which a by or without clause may separate from
// their parenthesis) and the literals Inf and NaN.
var promqlKeywords = map[string]bool{
	"and": true, "or": true, "unless": true, "atan2": true, "bool": true, "offset": true,
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
	"sum": true, "min": true, "max": true, "avg": true, "group": true, "stddev": true, "stdvar": true, "count": true,
	"count_values": true, "bottomk": true, "topk": true, "quantile": true, "limitk": true, "limit_ratio": true,
	"inf": true, "nan": true,
}

// labelListKeywords take a parenthesised list of label names.
var labelListKeywords = map[string]bool{
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
}

// metricNames returns the metric names a PromQL expression (or a Grafana
// query, whose $variables stand in ranges) selects: the identifiers outside
// label matchers {...}, ranges [...], strings and label lists of by,
// without, on, ignoring and group_*, that are neither keywords nor
// functions.
func metricNames(expr string) ([]string, error) {
	tokens, err := promqlTokens(expr)
	if err != nil {
		return nil, err
	}
	var names []string
	for i := 0; i < len(tokens); {
		tok := tokens[i]
		next := ""
		if i+1 < len(tokens) {
			next = tokens[i+1].text
		}
		switch {
		case tok.text == "{" || tok.text == "[":
			i, err = skipGroup(tokens, i)
		case tok.ident && labelListKeywords[strings.ToLower(tok.text)] && next == "(":
			i, err = skipGroup(tokens, i+1)
		case tok.ident && (next == "(" || promqlKeywords[strings.ToLower(tok.text)]):
			i++ // a function, an aggregation or a keyword
		case tok.ident:
			if !slices.Contains(names, tok.text) {
				names = append(names, tok.text)
			}
			i++
		default:
			i++
		}
		if err != nil {
			return nil, err
		}
	}
	return names, nil
}

// promqlToken is an identifier or a single character of punctuation of a
// PromQL expression.
type promqlToken struct {
	text  string
	ident bool
}

// promqlTokens splits a PromQL expression into identifiers and
// punctuation, dropping whitespace, comments, strings, numbers, durations
// and Grafana variables.
func promqlTokens(expr string) ([]promqlToken, error) {
	var tokens []promqlToken
	for i := 0; i < len(expr); {
		c := expr[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '#':
			i = scanWhile(expr, i, func(c byte) bool { return c != '\n' })
		case c == '"' || c == '\'' || c == '`':
			var err error
			if i, err = stringEnd(expr, i); err != nil {
				return nil, err
			}
		case c >= '0' && c <= '9' || c == '.':
			// A number or a duration such as 5m or 1h30m.
			i = scanWhile(expr, i, func(c byte) bool { return isIdent(c) || c == '.' })
		case c == '$':
			// A Grafana variable such as $__rate_interval or ${datasource}.
			i = scanWhile(expr, i+1, func(c byte) bool { return isIdent(c) || c == '{' || c == '}' })
		case isIdentStart(c):
			j := scanWhile(expr, i, isIdent)
			tokens = append(tokens, promqlToken{expr[i:j], true})
			i = j
		default:
			tokens = append(tokens, promqlToken{string(c), false})
			i++
		}
	}
	return tokens, nil
}

func isIdentStart(c byte) bool {
	return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func isIdent(c byte) bool { return isIdentStart(c) || c >= '0' && c <= '9' }

// scanWhile returns the index of the first byte of expr at or after i that
// ok refuses, or len(expr).
func scanWhile(expr string, i int, ok func(c byte) bool) int {
	for i < len(expr) && ok(expr[i]) {
		i++
	}
	return i
}

// stringEnd returns the index after the string literal that opens at
// expr[i]; backslashes escape except in raw (backquoted) strings.
func stringEnd(expr string, i int) (int, error) {
	quote := expr[i]
	j := i + 1
	for j < len(expr) && expr[j] != quote {
		if expr[j] == '\\' && quote != '`' {
			j++
		}
		j++
	}
	if j >= len(expr) {
		return 0, fmt.Errorf("unterminated string at %d", i)
	}
	return j + 1, nil
}

// closingBracket pairs each opening bracket with its closing one.
var closingBracket = map[string]string{"{": "}", "[": "]", "(": ")"}

// skipGroup returns the index after the group that opens at tokens[i].
func skipGroup(tokens []promqlToken, i int) (int, error) {
	depth := 0
	for j := i; j < len(tokens); j++ {
		switch tokens[j].text {
		case tokens[i].text:
			depth++
		case closingBracket[tokens[i].text]:
			depth--
			if depth == 0 {
				return j + 1, nil
			}
		}
	}
	return 0, fmt.Errorf("unbalanced %s", tokens[i].text)
}

func TestMetricNames(t *testing.T) {
	for expr, want := range map[string][]string{
		`sum by (le) (rate(a_bucket{x="y", le!="b"}[5m])) / on (le) group_left (z) b`:            {"a_bucket", "b"},
		`histogram_quantile(0.99, sum without (pod) (rate(c[$__rate_interval]))) > bool 1`:       {"c"},
		`label_replace(d, "dst", "$1", "src", "(.*)") or absent(e{name="f"}) unless g offset 5m`: {"d", "e", "g"},
		`time() - max(h) > 300 and vector(0) # i`:                                                {"h"},
		`topk(5, j) * Inf + count_values("k", l)`:                                                {"j", "l"},
		`max without (pod) (m) + sum(n) by (le)`:                                                 {"m", "n"},
	} {
		got, err := metricNames(expr)
		if err != nil {
			t.Errorf("%s: %v", expr, err)
		} else if !slices.Equal(got, want) {
			t.Errorf("%s selects %v, want %v", expr, got, want)
		}
	}
}

// TestUnknownMetricsAreReported: the check below fails for a metric the
// binary does not export and for a histogram or counter used by the wrong
// name, and passes the names it does export.
func TestUnknownMetricsAreReported(t *testing.T) {
	for _, name := range []string{
		"meshstack_metering_pods_seen", "meshstack_meshprojects", "leader_election_master_status", "workqueue_depth",
	} {
		if !registered(name) {
			t.Errorf("%s is not registered; the registry does not hold what the binary serves", name)
		}
	}
	known := []string{
		`rate(controller_runtime_reconcile_total{controller="meshproject"}[5m])`,
		`histogram_quantile(0.9, sum by (le) (rate(controller_runtime_reconcile_time_seconds_bucket[5m])))`,
		`rate(meshstack_metering_pass_duration_seconds_sum[5m]) / rate(meshstack_metering_pass_duration_seconds_count[5m])`,
		`max(meshstack_meshprojects{ready="False"})`,
	}
	if unknown := unknownMetrics(t, known); len(unknown) > 0 {
		t.Errorf("exported metrics reported unknown: %v", unknown)
	}
	for _, expr := range []string{
		`max(meshstack_metering_no_such_metric)`,
		`rate(meshstack_metering_records_emitted[5m])`,
		`meshstack_metering_pass_duration_seconds`,
		`meshstack_metering_pods_seen_count`,
		`controller_runtime_reconcile_total_bucket`,
		`sum(rate(controller_runtime_reconcile_errors{controller="meshproject"}[5m]))`,
	} {
		if unknown := unknownMetrics(t, []string{expr}); len(unknown) != 1 {
			t.Errorf("%s: reported %v, want its one unknown metric", expr, unknown)
		}
	}
}

// promtool runs promtool in dir and fails the test with its output.
func promtool(t *testing.T, dir string, args ...string) {
	t.Helper()
	bin, err := framework.PromtoolBinary()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(context.Background(), bin, args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// writeRules writes groups as a Prometheus rule file (JSON is YAML).
func writeRules(t *testing.T, path string, groups any) {
	t.Helper()
	data, err := json.MarshalIndent(map[string]any{"groups": groups}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// alertRules returns the rendered PrometheusRule's alerts by name.
func (r rendered) alertRules(t *testing.T) (groups []any, alerts map[string]map[string]any) {
	t.Helper()
	u, ok := r[ruleName]
	if !ok {
		t.Fatalf("no %s; rendered %v", ruleName, r.keys())
	}
	groups, _, _ = unstructured.NestedSlice(u.Object, "spec", "groups")
	alerts = map[string]map[string]any{}
	for _, g := range groups {
		rules, _, _ := unstructured.NestedSlice(g.(map[string]any), "rules")
		for _, rule := range rules {
			rule := rule.(map[string]any)
			alerts[rule["alert"].(string)] = rule
		}
	}
	return groups, alerts
}

var allAlerts = []string{"MeshstackMeteringStale", "MeshstackUsageUndelivered", "MeshstackMeteringCheckpointFailing",
	"MeshstackReconcileErrors", "MeshstackProjectsNotReady", "MeshstackLeaderMissing"}

// TestPrometheusRule: the rendered rules are valid (promtool check rules,
// lint fatal), each alert fires on the series of testdata/rules-test.yaml
// that should make it fire and not on the others (promtool test rules), and
// they select only metrics the binary exports.
func TestPrometheusRule(t *testing.T) {
	r := render(t, "--set", "prometheusRule.enabled=true", "--set", "prometheusRule.labels.release=prometheus")
	u := r[ruleName]
	if u == nil || u.GetAPIVersion() != "monitoring.coreos.com/v1" || u.GetNamespace() != namespace ||
		u.GetLabels()["release"] != "prometheus" {
		t.Fatalf("PrometheusRule %v", u)
	}
	groups, alerts := r.alertRules(t)
	if got := mapKeys(alerts); !slices.Equal(got, sortedCopy(allAlerts)) {
		t.Errorf("alerts %v, want %v", got, allAlerts)
	}
	dir := t.TempDir()
	writeRules(t, filepath.Join(dir, "rules.yaml"), groups)
	unitTests, err := os.ReadFile(filepath.Join(framework.RepoRoot(), "test", "chart", "testdata", "rules-test.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "rules-test.yaml"), unitTests, 0o600); err != nil {
		t.Fatal(err)
	}
	promtool(t, dir, "check", "rules", "--lint=all", "--lint-fatal", "rules.yaml")
	promtool(t, dir, "test", "rules", "rules-test.yaml")

	exprs := make([]string, 0, len(alerts))
	for _, a := range alerts {
		exprs = append(exprs, a["expr"].(string))
	}
	if unknown := unknownMetrics(t, exprs); len(unknown) > 0 {
		t.Errorf("the alerts select metrics the binary does not export:\n  %s", strings.Join(unknown, "\n  "))
	}
}

// TestPrometheusRuleValues: the thresholds derive from the metering
// interval and window and the alerts' values; labels, annotations, the
// runbook and the namespace are configurable; a component that does not run
// has no alerts.
func TestPrometheusRuleValues(t *testing.T) {
	r := render(t, "--set", "prometheusRule.enabled=true", "--set", "metering.interval=90s", "--set", "metering.window=30m",
		"--set", "prometheusRule.alerts.meteringStale.intervals=3", "--set", "prometheusRule.alerts.usageUndelivered.windows=2",
		"--set-json", "prometheusRule.alerts.reconcileErrors.ratio=0.25", "--set", "prometheusRule.alerts.projectsNotReady.for=30m",
		"--set", "prometheusRule.alerts.leaderMissing.severity=page",
		"--set", "prometheusRule.additionalRuleLabels.team=platform", "--set", "prometheusRule.additionalRuleLabels.severity=info",
		"--set", "prometheusRule.additionalRuleAnnotations.dashboard=https://grafana.example.com/d/meshstack-operator",
		"--set", "prometheusRule.runbookUrl=https://wiki.example.com/meshstack", "--set", "prometheusRule.namespace=monitoring")
	if ns := r[ruleName].GetNamespace(); ns != "monitoring" {
		t.Errorf("namespace %q, want monitoring", ns)
	}
	_, alerts := r.alertRules(t)
	for alert, want := range map[string]string{
		"MeshstackMeteringStale":    "> 270",  // 3 × 90s
		"MeshstackUsageUndelivered": "> 3600", // 2 × 30m
		"MeshstackReconcileErrors":  "> 0.25",
	} {
		if expr := alerts[alert]["expr"].(string); !strings.HasSuffix(strings.TrimSpace(expr), want) {
			t.Errorf("%s: expr %q, want it to end in %q", alert, expr, want)
		}
	}
	if f := alerts["MeshstackProjectsNotReady"]["for"]; f != "30m" {
		t.Errorf("MeshstackProjectsNotReady for %v, want 30m", f)
	}
	for name, a := range alerts {
		labels, _, _ := unstructured.NestedStringMap(a, "labels")
		annotations, _, _ := unstructured.NestedStringMap(a, "annotations")
		wantSeverity := map[string]string{
			"MeshstackMeteringStale": "critical", "MeshstackMeteringCheckpointFailing": "critical", "MeshstackLeaderMissing": "page",
		}[name]
		if wantSeverity == "" {
			wantSeverity = "warning"
		}
		if labels["team"] != "platform" || labels["severity"] != wantSeverity {
			t.Errorf("%s: labels %v, want team platform and severity %s", name, labels, wantSeverity)
		}
		if annotations["runbook_url"] != "https://wiki.example.com/meshstack#"+strings.ToLower(name) ||
			annotations["dashboard"] == "" || annotations["summary"] == "" || annotations["description"] == "" {
			t.Errorf("%s: annotations %v", name, annotations)
		}
	}

	r = render(t, "--set", "prometheusRule.enabled=true", "--set", "metering.enabled=false", "--set", "prometheusRule.runbookUrl=",
		"--set", "prometheusRule.alerts.reconcileErrors.enabled=false")
	_, alerts = r.alertRules(t)
	if got, want := mapKeys(alerts), []string{"MeshstackLeaderMissing", "MeshstackProjectsNotReady"}; !slices.Equal(got, want) {
		t.Errorf("without metering and with reconcileErrors off: alerts %v, want %v", got, want)
	}
	if expr := alerts["MeshstackLeaderMissing"]["expr"].(string); strings.Contains(expr, "metering") {
		t.Errorf("without metering the leader alert still watches it: %s", expr)
	}
	if _, ok, _ := unstructured.NestedString(alerts["MeshstackLeaderMissing"], "annotations", "runbook_url"); ok {
		t.Errorf("a runbook_url without prometheusRule.runbookUrl")
	}

	r = render(t, "--set", "prometheusRule.enabled=true", "--set", "replicator.replicas=0", "--set", "metering.enabled=false")
	if _, ok := r[ruleName]; ok {
		t.Errorf("a PrometheusRule without any alert")
	}
	r = render(t)
	for _, key := range []string{ruleName, dashboardName} {
		if _, ok := r[key]; ok {
			t.Errorf("%s is rendered by default", key)
		}
	}
}

// grafanaTargets returns the queries of a dashboard's panels, rows' panels
// included, and of its query variables, by panel title.
func grafanaTargets(t *testing.T, dashboard map[string]any) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	var walk func(panels []any)
	walk = func(panels []any) {
		for _, p := range panels {
			p := p.(map[string]any)
			title, _ := p["title"].(string)
			targets, _ := p["targets"].([]any)
			for _, target := range targets {
				if expr, ok := target.(map[string]any)["expr"].(string); ok {
					out[title] = append(out[title], expr)
				}
			}
			if p["type"] != "row" && len(targets) > 0 {
				ds, _ := p["datasource"].(map[string]any)
				if ds["uid"] != "${datasource}" {
					t.Errorf("panel %q: datasource %v, want the ${datasource} variable", title, ds)
				}
			}
			nested, _ := p["panels"].([]any)
			walk(nested)
		}
	}
	panels, _ := dashboard["panels"].([]any)
	walk(panels)
	templating, _ := dashboard["templating"].(map[string]any)
	variables, _ := templating["list"].([]any)
	for _, v := range variables {
		v := v.(map[string]any)
		if v["type"] == "query" {
			q := fmt.Sprint(v["query"])
			if m, ok := v["query"].(map[string]any); ok {
				q = fmt.Sprint(m["query"])
			}
			// label_values(<series>, <label>) and query_result(<expr>).
			if inner, ok := strings.CutPrefix(q, "label_values("); ok {
				q = inner[:strings.LastIndex(inner, ",")]
			}
			out["variable "+fmt.Sprint(v["name"])] = append(out["variable "+fmt.Sprint(v["name"])], q)
		}
	}
	return out
}

// TestGrafanaDashboard: the ConfigMap carries the sidecar's label and the
// chart's dashboard file as it is; the JSON parses, has the panels the
// issue asks for, its queries are valid PromQL (promtool check rules on
// them as recording rules) and select only metrics the binary exports.
func TestGrafanaDashboard(t *testing.T) {
	r := render(t, "--set", "grafanaDashboard.enabled=true", "--set", "grafanaDashboard.namespace=monitoring",
		"--set", "grafanaDashboard.annotations.grafana_folder=meshStack")
	cm, ok := r[dashboardName]
	if !ok {
		t.Fatalf("no %s; rendered %v", dashboardName, r.keys())
	}
	if cm.GetLabels()["grafana_dashboard"] != "1" || cm.GetNamespace() != "monitoring" ||
		cm.GetAnnotations()["grafana_folder"] != "meshStack" {
		t.Errorf("ConfigMap labels %v, namespace %q, annotations %v", cm.GetLabels(), cm.GetNamespace(), cm.GetAnnotations())
	}
	data, _, _ := unstructured.NestedString(cm.Object, "data", dashboardFile)
	file, err := os.ReadFile(filepath.Join(framework.RepoRoot(), framework.ChartDir, "dashboards", dashboardFile))
	if err != nil {
		t.Fatal(err)
	}
	if data != strings.TrimSpace(string(file)) {
		t.Errorf("the ConfigMap's %s is not the chart's dashboards/%s", dashboardFile, dashboardFile)
	}
	var dashboard map[string]any
	if err := json.Unmarshal([]byte(data), &dashboard); err != nil {
		t.Fatalf("the dashboard is not JSON: %v", err)
	}
	if dashboard["uid"] != "meshstack-operator" || dashboard["title"] == "" {
		t.Errorf("uid %v, title %v", dashboard["uid"], dashboard["title"])
	}
	targets := grafanaTargets(t, dashboard)
	var exprs []string
	for _, title := range mapKeys(targets) {
		exprs = append(exprs, targets[title]...)
	}
	if len(exprs) == 0 {
		t.Fatal("the dashboard has no queries")
	}

	// The panels, by the metric each shows.
	selected := map[string]bool{}
	for _, expr := range exprs {
		names, _ := metricNames(expr)
		for _, n := range names {
			selected[n] = true
		}
	}
	for panel, metric := range map[string]string{
		"projects by state":      "meshstack_meshprojects",
		"reconcile rate":         "controller_runtime_reconcile_total",
		"reconcile latency":      "controller_runtime_reconcile_time_seconds_bucket",
		"metering pass duration": "meshstack_metering_pass_duration_seconds_bucket",
		"pods seen":              "meshstack_metering_pods_seen",
		"records emitted":        "meshstack_metering_records_emitted_total",
		"delivery backlog":       "meshstack_metering_pending_windows",
		"delivery backlog age":   "meshstack_metering_oldest_undelivered_window_timestamp_seconds",
	} {
		if !selected[metric] {
			t.Errorf("no panel shows the %s (%s)", panel, metric)
		}
	}
	if unknown := unknownMetrics(t, exprs); len(unknown) > 0 {
		t.Errorf("the dashboard selects metrics the binary does not export:\n  %s", strings.Join(unknown, "\n  "))
	}

	// promtool parses each query as a recording rule, Grafana's range
	// variables replaced by a duration.
	grafanaRanges := strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$__range", "1h")
	rules := make([]map[string]string, 0, len(exprs))
	for i, expr := range exprs {
		rules = append(rules, map[string]string{"record": fmt.Sprintf("dashboard:query_%d", i), "expr": grafanaRanges.Replace(expr)})
	}
	dir := t.TempDir()
	writeRules(t, filepath.Join(dir, "dashboard-queries.yaml"), []any{map[string]any{"name": "dashboard", "rules": rules}})
	promtool(t, dir, "check", "rules", "dashboard-queries.yaml")
}

// TestMonitoringValues: helm lint passes with both on, and the schema
// rejects malformed monitoring values.
func TestMonitoringValues(t *testing.T) {
	if _, err := framework.Helm(context.Background(), t.TempDir(), "lint", "--strict", framework.ChartDir, "--namespace", namespace,
		"--set", "prometheusRule.enabled=true", "--set", "grafanaDashboard.enabled=true", "--set", "serviceMonitor.enabled=true"); err != nil {
		t.Fatal(err)
	}
	for name, args := range map[string][]string{
		"unknown alert":          {"--set", "prometheusRule.alerts.podsCrashing.enabled=true"},
		"Go duration as for":     {"--set", "prometheusRule.alerts.leaderMissing.for=1.5h"},
		"no stale interval":      {"--set", "prometheusRule.alerts.meteringStale.intervals=0"},
		"ratio above one":        {"--set", "prometheusRule.alerts.reconcileErrors.ratio=2"},
		"empty severity":         {"--set", "prometheusRule.alerts.projectsNotReady.severity="},
		"unknown dashboard key":  {"--set", "grafanaDashboard.folder=meshStack"},
		"non-string rule labels": {"--set", "prometheusRule.additionalRuleLabels.tier=1"},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := framework.Helm(context.Background(), t.TempDir(), append([]string{
				"template", "meshstack-operator", framework.ChartDir, "--namespace", namespace,
				"--set", "prometheusRule.enabled=true"}, args...)...); err == nil {
				t.Errorf("helm template %v succeeded; want it rejected", args)
			}
		})
	}
}

func mapKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func sortedCopy(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
