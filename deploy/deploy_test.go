// Package deploy_test checks the deployment files against the code: every YAML parses, the
// ConfigMap carries exactly configs/notifier.yaml and configs/rules/* and they load, the
// container runs a real command, the StatefulSet agrees with the config (paths, port, drain
// deadline), and the metrics named by the alerts and the dashboard are the ones the code
// publishes (METRICS.md).
//
// Regenerate kubernetes/configmap.yaml from configs/ with:
//
//	go test ./deploy -run TestConfigMap -update
package deploy_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"notifier/rules"
)

var update = flag.Bool("update", false, "regenerate kubernetes/configmap.yaml from configs/")

const (
	configMapFile = "kubernetes/configmap.yaml"
	configFile    = "../configs/notifier.yaml"
	rulesDir      = "../configs/rules"
	// In the pod (statefulset.yaml): where the config, the rules and the store are.
	podConfigPath = "/etc/notifier/notifier.yaml"
	podRulesDir   = "/etc/notifier/rules"
	podStoreDir   = "/var/lib/notifier"
	adminPort     = 9464
)

// yamlDocs decodes every document of a (multi-document) YAML file.
func yamlDocs(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	var docs []map[string]any
	for {
		var doc map[string]any
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			t.Fatalf("%s: document %d: %v", path, len(docs)+1, err)
		}
		if doc != nil {
			docs = append(docs, doc)
		}
	}
}

func TestEveryYAMLParses(t *testing.T) {
	n := 0
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || (filepath.Ext(path) != ".yaml" && filepath.Ext(path) != ".yml") {
			return err
		}
		docs := yamlDocs(t, path)
		if len(docs) == 0 {
			t.Errorf("%s: no YAML document", path)
		}
		if strings.HasPrefix(path, "kubernetes/") {
			for i, d := range docs {
				if d["apiVersion"] == nil || d["kind"] == nil || dig(d, "metadata", "name") == nil {
					t.Errorf("%s: document %d lacks apiVersion, kind or metadata.name", path, i+1)
				}
			}
		}
		n++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 5 {
		t.Errorf("only %d YAML files under deploy/", n)
	}
	var dash map[string]any
	if b, err := os.ReadFile("grafana/dashboard.json"); err != nil || json.Unmarshal(b, &dash) != nil {
		t.Errorf("grafana/dashboard.json does not parse: %v", err)
	}
}

// dig walks nested maps and lists ("0" indexes a list).
func dig(v any, path ...string) any {
	for _, p := range path {
		switch x := v.(type) {
		case map[string]any:
			v = x[p]
		case []any:
			i := 0
			for _, c := range p {
				i = i*10 + int(c-'0')
			}
			if i >= len(x) {
				return nil
			}
			v = x[i]
		default:
			return nil
		}
	}
	return v
}

// wantConfigMaps is what kubernetes/configmap.yaml must hold: the config and every rule file,
// byte for byte.
func wantConfigMaps(t *testing.T) (config map[string]string, rules map[string]string) {
	t.Helper()
	b, err := os.ReadFile(configFile)
	if err != nil {
		t.Fatalf("the example config: %v", err)
	}
	config = map[string]string{"notifier.yaml": string(b)}
	rules = map[string]string{}
	entries, err := os.ReadDir(rulesDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() {
			t.Errorf("%s/%s: a ConfigMap has no subdirectories; keep rules and templates flat", rulesDir, e.Name())
			continue
		}
		b, err := os.ReadFile(filepath.Join(rulesDir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		rules[e.Name()] = string(b)
	}
	return config, rules
}

func TestConfigMapIsConfigsVerbatim(t *testing.T) {
	wantConfig, wantRules := wantConfigMaps(t)
	if *update {
		writeConfigMap(t, wantConfig, wantRules)
	}
	got := map[string]map[string]string{}
	for _, d := range yamlDocs(t, configMapFile) {
		if d["kind"] != "ConfigMap" {
			t.Errorf("%s: unexpected kind %v", configMapFile, d["kind"])
			continue
		}
		data := map[string]string{}
		for k, v := range d["data"].(map[string]any) {
			data[k], _ = v.(string)
		}
		got[dig(d, "metadata", "name").(string)] = data
	}
	for name, want := range map[string]map[string]string{"notifier-config": wantConfig, "notifier-rules": wantRules} {
		if !mapsEqual(got[name], want) {
			t.Errorf("%s: ConfigMap %s differs from configs/ (run: go test ./deploy -run TestConfigMap -update)", configMapFile, name)
		}
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// writeConfigMap renders kubernetes/configmap.yaml with literal block scalars.
func writeConfigMap(t *testing.T, config, rulesData map[string]string) {
	var buf bytes.Buffer
	buf.WriteString("# GENERATED from configs/notifier.yaml and configs/rules/ by\n" +
		"#   go test ./deploy -run TestConfigMap -update\n" +
		"# Do not edit: edit configs/ and regenerate (deploy_test.go checks they are identical).\n")
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	for _, cm := range []struct {
		name string
		data map[string]string
		what string
	}{
		{"notifier-config", config, "the service config, mounted at " + podConfigPath},
		{"notifier-rules", rulesData, "the rule files, mounted at " + podRulesDir + " (hot-reloaded)"},
	} {
		data := &yaml.Node{Kind: yaml.MappingNode}
		keys := make([]string, 0, len(cm.data))
		for k := range cm.data {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			data.Content = append(data.Content,
				&yaml.Node{Kind: yaml.ScalarNode, Value: k},
				&yaml.Node{Kind: yaml.ScalarNode, Value: cm.data[k], Style: yaml.LiteralStyle})
		}
		doc := &yaml.Node{Kind: yaml.MappingNode, HeadComment: cm.what, Content: []*yaml.Node{
			scalar("apiVersion"), scalar("v1"),
			scalar("kind"), scalar("ConfigMap"),
			scalar("metadata"), {Kind: yaml.MappingNode, Content: []*yaml.Node{
				scalar("name"), scalar(cm.name),
				scalar("labels"), {Kind: yaml.MappingNode, Content: []*yaml.Node{scalar("app.kubernetes.io/name"), scalar("notifier")}},
			}},
			scalar("data"), data,
		}}
		if err := enc.Encode(doc); err != nil {
			t.Fatal(err)
		}
	}
	enc.Close()
	if err := os.WriteFile(configMapFile, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func scalar(s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Value: s} }

// podConfig is the example config as the pod reads it.
type podConfig struct {
	Store  struct{ Dir string }
	Rules  struct{ Dir string }
	Admin  struct{ Listen string }
	Sender struct {
		DrainTimeout string `yaml:"drain_timeout"`
	}
	Channels map[string]any
}

func readPodConfig(t *testing.T) podConfig {
	t.Helper()
	b, err := os.ReadFile(configFile)
	if err != nil {
		t.Fatal(err)
	}
	var c podConfig
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestConfigMapRulesLoad: the ConfigMap's rules, written out as the pod sees them, pass the
// rules loader with the config's channels.
func TestConfigMapRulesLoad(t *testing.T) {
	dir := t.TempDir()
	for _, d := range yamlDocs(t, configMapFile) {
		if dig(d, "metadata", "name") != "notifier-rules" {
			continue
		}
		for name, v := range d["data"].(map[string]any) {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(v.(string)), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	var channels []string
	for name := range readPodConfig(t).Channels {
		channels = append(channels, name)
	}
	set, err := rules.LoadDir(dir, rules.Options{Channels: channels})
	if err != nil {
		t.Fatalf("the ConfigMap's rules do not load:\n%v", err)
	}
	if len(set.Rules) == 0 {
		t.Error("the ConfigMap's rules define no rule")
	}
}

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

var (
	binOnce sync.Once
	binPath string
	binErr  error
	binOut  []byte
)

// notifierBinary builds cmd/notifier once for the tests that run it.
func notifierBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "notifier-deploy-test")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "notifier")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/notifier")
		cmd.Dir = ".."
		binOut, binErr = cmd.CombinedOutput()
	})
	if binErr != nil {
		t.Fatalf("go build ./cmd/notifier: %v\n%s", binErr, binOut)
	}
	return binPath
}

// runBinary runs the notifier binary and returns its combined output.
func runBinary(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(notifierBinary(t), args...)
	cmd.Env = append(os.Environ(), "NOTIFIER_CONFIG=")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestConfigMapConfigAccepted: the binary's own config loader accepts the ConfigMap's config
// and its rules (`notifier rules check --channels-from CONFIG DIR`).
func TestConfigMapConfigAccepted(t *testing.T) {
	dir := t.TempDir()
	rulesOut := filepath.Join(dir, "rules")
	os.Mkdir(rulesOut, 0o755)
	for _, d := range yamlDocs(t, configMapFile) {
		for name, v := range d["data"].(map[string]any) {
			target := filepath.Join(rulesOut, name)
			if dig(d, "metadata", "name") == "notifier-config" {
				target = filepath.Join(dir, name)
			}
			os.WriteFile(target, []byte(v.(string)), 0o644)
		}
	}
	cfgPath := filepath.Join(dir, "notifier.yaml")
	out, err := runBinary(t, "rules", "check", "--channels-from", cfgPath, rulesOut)
	if err != nil {
		t.Fatalf("notifier rules check --channels-from <ConfigMap config> <ConfigMap rules>: %v\n%s", err, out)
	}
	// The check is real: the same config with an unknown key is refused.
	b, _ := os.ReadFile(cfgPath)
	os.WriteFile(cfgPath, append(b, "\nbogus_key: 1\n"...), 0o644)
	if out, err := runBinary(t, "rules", "check", "--channels-from", cfgPath, rulesOut); err == nil || !strings.Contains(out, "bogus_key") {
		t.Errorf("a config with an unknown key passed the check: %v\n%s", err, out)
	}
}

// containerCommand is the Dockerfile's ENTRYPOINT + CMD.
func containerCommand(t *testing.T) (entrypoint, cmd []string) {
	t.Helper()
	b, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		for _, kw := range []string{"ENTRYPOINT", "CMD"} {
			if rest, ok := strings.CutPrefix(line, kw+" "); ok {
				var v []string
				if err := json.Unmarshal([]byte(rest), &v); err != nil {
					t.Fatalf("Dockerfile %s is not the JSON (exec) form: %v", kw, err)
				}
				if kw == "CMD" {
					cmd = v
				} else {
					entrypoint = v
				}
			}
		}
	}
	return entrypoint, cmd
}

// TestContainerRunsARealCommand: the image's ENTRYPOINT/CMD and the StatefulSet's args name
// a real command and real flags of the binary (parsed by the binary itself with --help).
func TestContainerRunsARealCommand(t *testing.T) {
	entry, cmd := containerCommand(t)
	if !slices.Equal(entry, []string{"/notifier"}) {
		t.Errorf("ENTRYPOINT = %q, want [/notifier]", entry)
	}
	if want := []string{"run", "--config", podConfigPath}; !slices.Equal(cmd, want) {
		t.Errorf("CMD = %q, want %q", cmd, want)
	}
	args := statefulSetContainer(t)["args"]
	var podArgs []string
	for _, a := range args.([]any) {
		podArgs = append(podArgs, a.(string))
	}
	if !slices.Equal(podArgs, cmd) {
		t.Errorf("StatefulSet args %q differ from the image's CMD %q", podArgs, cmd)
	}
	// `notifier run --config X --help` parses the flags and prints the command's help; an
	// unknown command or flag fails.
	out, err := runBinary(t, append(cmd, "--help")...)
	if err != nil || !strings.Contains(out, "--config") {
		t.Errorf("notifier %s --help: %v\n%s", strings.Join(cmd, " "), err, out)
	}
	if out, err := runBinary(t, "run", "--no-such-flag", "--help"); err == nil {
		t.Errorf("a wrong flag is accepted, so this test proves nothing:\n%s", out)
	}
}

func statefulSetContainer(t *testing.T) map[string]any {
	t.Helper()
	docs := yamlDocs(t, "kubernetes/statefulset.yaml")
	c, ok := dig(docs[0], "spec", "template", "spec", "containers", "0").(map[string]any)
	if !ok {
		t.Fatal("statefulset.yaml: no container")
	}
	return c
}

// TestStatefulSetMatchesConfig: the pod mounts the store, the rules and the config where the
// example config expects them, probes the admin port the config listens on, and waits longer
// than the drain deadline before killing the pod.
func TestStatefulSetMatchesConfig(t *testing.T) {
	cfg := readPodConfig(t)
	ss := yamlDocs(t, "kubernetes/statefulset.yaml")[0]
	if r := dig(ss, "spec", "replicas"); r != 1 {
		t.Errorf("replicas = %v, want 1 (one binlog stream, one Badger process)", r)
	}
	c := statefulSetContainer(t)
	mounts := map[string]bool{}
	for _, m := range c["volumeMounts"].([]any) {
		mounts[m.(map[string]any)["mountPath"].(string)] = true
	}
	resolve := func(p string) string {
		if filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(filepath.Dir(podConfigPath), p)
	}
	for what, dir := range map[string]string{"store.dir": cfg.Store.Dir, "rules.dir": cfg.Rules.Dir} {
		if !mounts[resolve(dir)] {
			t.Errorf("configs/notifier.yaml %s %q is %s in the pod, which is not a volume mount (mounts: %v)", what, dir, resolve(dir), mounts)
		}
	}
	if !mounts[podStoreDir] || !mounts[podRulesDir] || !mounts[podConfigPath] {
		t.Errorf("mounts %v lack one of %s, %s, %s", mounts, podStoreDir, podRulesDir, podConfigPath)
	}
	if !strings.HasSuffix(cfg.Admin.Listen, ":9464") || strings.HasPrefix(cfg.Admin.Listen, "127.") || strings.HasPrefix(cfg.Admin.Listen, "localhost") {
		t.Errorf("configs/notifier.yaml admin.listen %q: the probes and the scraper need \":%d\" (all interfaces) in the pod", cfg.Admin.Listen, adminPort)
	}
	if p := dig(c, "ports", "0", "containerPort"); p != adminPort {
		t.Errorf("containerPort = %v, want %d", p, adminPort)
	}
	for probe, path := range map[string]string{"livenessProbe": "/healthz", "readinessProbe": "/readyz"} {
		if got := dig(c, probe, "httpGet", "path"); got != path {
			t.Errorf("%s path = %v, want %s", probe, got, path)
		}
		if got := dig(c, probe, "httpGet", "port"); got != "admin" {
			t.Errorf("%s port = %v, want the admin port", probe, got)
		}
	}
	drain := 30 * time.Second // the config's default
	if cfg.Sender.DrainTimeout != "" {
		d, err := time.ParseDuration(cfg.Sender.DrainTimeout)
		if err != nil {
			t.Fatalf("sender.drain_timeout: %v", err)
		}
		drain = d
	}
	grace, _ := dig(ss, "spec", "template", "spec", "terminationGracePeriodSeconds").(int)
	if time.Duration(grace)*time.Second < drain+10*time.Second {
		t.Errorf("terminationGracePeriodSeconds = %d, want at least drain_timeout %s + 10s margin", grace, drain)
	}
	// Every credential file the config names ({file: PATH}, *_file) is inside a mounted volume.
	for _, f := range configFiles(t) {
		mounted := false
		for m := range mounts {
			mounted = mounted || f == m || strings.HasPrefix(f, strings.TrimSuffix(m, "/")+"/")
		}
		if !mounted {
			t.Errorf("configs/notifier.yaml reads %s, which no volume of the StatefulSet provides", f)
		}
	}
	if dig(ss, "spec", "template", "spec", "securityContext", "runAsNonRoot") != true {
		t.Error("pod securityContext.runAsNonRoot is not true")
	}
}

var (
	metricRow   = regexp.MustCompile("(?m)^\\| `(notifier_[a-z0-9_]+)` \\| (\\w+) \\|")
	metricInGo  = regexp.MustCompile("[`\"](notifier_[a-z0-9_]+)")
	metricInUse = regexp.MustCompile(`\bnotifier_[a-z0-9_]+`)
)

// documentedMetrics reads METRICS.md: name → type.
func documentedMetrics(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile("METRICS.md")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, m := range metricRow.FindAllStringSubmatch(string(b), -1) {
		out[m[1]] = m[2]
	}
	if len(out) == 0 {
		t.Fatal("METRICS.md lists no metric")
	}
	return out
}

// TestMetricsListIsWhatTheCodePublishes: METRICS.md names exactly the notifier_* series
// created in the Go sources (string literals, outside tests).
func TestMetricsListIsWhatTheCodePublishes(t *testing.T) {
	inCode := map[string]string{}
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || d.Name() == "deploy" || strings.HasPrefix(d.Name(), ".")) && path != ".." {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range metricInGo.FindAllStringSubmatch(string(b), -1) {
			inCode[m[1]] = path
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	doc := documentedMetrics(t)
	for name, path := range inCode {
		if _, ok := doc[name]; !ok {
			t.Errorf("%s (in %s) is not listed in deploy/METRICS.md", name, path)
		}
	}
	for name := range doc {
		if _, ok := inCode[name]; !ok {
			t.Errorf("deploy/METRICS.md lists %s, which no Go source publishes", name)
		}
	}
}

// TestAlertsAndDashboardUseKnownMetrics: every notifier_* series in the alert rules and the
// dashboard is documented (histograms through their _bucket/_sum/_count series).
func TestAlertsAndDashboardUseKnownMetrics(t *testing.T) {
	doc := documentedMetrics(t)
	for _, file := range []string{"vmalert/rules.yaml", "grafana/dashboard.json"} {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		used := 0
		for _, name := range metricInUse.FindAllString(string(b), -1) {
			used++
			if _, ok := doc[name]; ok {
				continue
			}
			base := name
			for _, suf := range []string{"_bucket", "_sum", "_count"} {
				base = strings.TrimSuffix(base, suf)
			}
			if typ := doc[base]; base != name && (typ == "histogram" || typ == "summary") {
				continue
			}
			t.Errorf("%s uses %s, which is not in deploy/METRICS.md", file, name)
		}
		if used == 0 {
			t.Errorf("%s uses no notifier_* metric", file)
		}
	}
}

// configFiles returns the files the example config reads credentials from: {file: PATH}
// values and *_file keys (relative paths resolved against the config's directory in the pod).
func configFiles(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(configFile)
	if err != nil {
		t.Fatal(err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		t.Fatal(err)
	}
	var out []string
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i].Value, n.Content[i+1]
				if (k == "file" || strings.HasSuffix(k, "_file")) && v.Kind == yaml.ScalarNode && v.Value != "" {
					p := v.Value
					if !filepath.IsAbs(p) {
						p = filepath.Join(filepath.Dir(podConfigPath), p)
					}
					out = append(out, p)
				}
			}
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(&root)
	return out
}
