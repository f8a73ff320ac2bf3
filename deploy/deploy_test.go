package deploy_test

import (
	"bufio"
	"bytes"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flashstock/flashstock/internal/proc/proctest"
	"gopkg.in/yaml.v3"
)

// ---- stockd as built by the Dockerfile ----

type stockdInfo struct {
	bin             string          // stockd, built with the Dockerfile's command
	flags           map[string]bool // every flag `stockd --help` lists
	shutdownTimeout time.Duration   // default of --shutdown-timeout
	removedExit     string          // the exit status `stockd --help` gives a node removed from the cluster
	built           []string        // the binaries the Dockerfile's build produced
}

var (
	stockdOnce sync.Once
	stockd     stockdInfo
	stockdErr  error
	buildDir   string
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "deploy-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	buildDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// builtStockd runs the Dockerfile's `go build` (same environment, flags and packages, into a
// temp dir instead of /out/bin) once, and reads the flags off `stockd --help`.
func builtStockd(t *testing.T) stockdInfo {
	t.Helper()
	proctest.SkipShort(t) // a go build and a stockd process: tier 3
	stockdOnce.Do(func() { stockd, stockdErr = buildLikeDockerfile() })
	if stockdErr != nil {
		t.Fatal(stockdErr)
	}
	return stockd
}

// buildArgs are the --build-arg values the test builds with: a version stamp that can
// only come from the Dockerfile's -ldflags.
var buildArgs = map[string]string{"VERSION": "v9.9.9-deploy-test", "REVISION": "0123456789abcdef0123456789abcdef01234567"}

var goBuildLine = regexp.MustCompile(`(?s)CGO_ENABLED=0 GOOS=linux go build (.*?) -o /out/bin/ \\\s+(.*?)\s*\\?\s*\n\s*&&`)

func buildLikeDockerfile() (stockdInfo, error) {
	df, err := os.ReadFile("Dockerfile")
	if err != nil {
		return stockdInfo{}, err
	}
	m := goBuildLine.FindSubmatch(df)
	if m == nil {
		return stockdInfo{}, errors.New("Dockerfile: no `CGO_ENABLED=0 GOOS=linux go build ... -o /out/bin/ PKGS && ...` line")
	}
	// The build's ARGs as `docker build --build-arg` would set them.
	flags := os.Expand(string(m[1]), func(name string) string { return buildArgs[name] })
	args := append([]string{"build"}, splitShellWords(flags)...)
	args = append(args, "-o", buildDir+string(filepath.Separator))
	args = append(args, strings.Fields(string(m[2]))...)
	cmd := exec.Command("go", args...)
	cmd.Dir = ".." // the Dockerfile builds from the repository root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if out, err := cmd.CombinedOutput(); err != nil {
		return stockdInfo{}, fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	info := stockdInfo{bin: filepath.Join(buildDir, "stockd"), flags: map[string]bool{}}
	for _, pkg := range strings.Fields(string(m[2])) {
		info.built = append(info.built, filepath.Join(buildDir, filepath.Base(pkg)))
	}
	var out bytes.Buffer
	help := exec.Command(info.bin, "--help")
	help.Stdout, help.Stderr = &out, &out
	_ = help.Run() // help may exit 0 or 2; the text is what matters
	flagLine := regexp.MustCompile(`^\s+--([a-z0-9-]+)\b`)
	lines := strings.Split(out.String(), "\n")
	for i, line := range lines {
		if f := flagLine.FindStringSubmatch(line); f != nil {
			info.flags[f[1]] = true
			if f[1] == "shutdown-timeout" && i+1 < len(lines) {
				if d := regexp.MustCompile(`\(default (\w+)\)`).FindStringSubmatch(lines[i+1]); d != nil {
					info.shutdownTimeout, _ = time.ParseDuration(d[1])
				}
			}
		}
	}
	if m := regexp.MustCompile(`(?m)^\s+(\d+)\s+removed from the cluster`).FindStringSubmatch(out.String()); m != nil {
		info.removedExit = m[1]
	}
	if len(info.flags) < 10 || info.shutdownTimeout == 0 || info.removedExit == "" {
		return info, fmt.Errorf("could not read the flags and exit codes off `stockd --help` (%d flags, shutdown timeout %v, removed exit %q):\n%s",
			len(info.flags), info.shutdownTimeout, info.removedExit, out.String())
	}
	return info, nil
}

// splitShellWords splits the flags of the build line, honouring double quotes.
func splitShellWords(s string) []string {
	var words []string
	var cur strings.Builder
	inQuote, inWord := false, false
	for _, r := range s {
		switch {
		case r == '"':
			inQuote, inWord = !inQuote, true
		case (r == ' ' || r == '\t' || r == '\n') && !inQuote:
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words
}

// checkSetting fails unless name (a flag without dashes, or STOCKD_<FLAG>) is a stockd flag.
func (s stockdInfo) checkSetting(t *testing.T, where, name string) {
	t.Helper()
	flag := name
	if env, ok := strings.CutPrefix(name, "STOCKD_"); ok {
		flag = strings.ReplaceAll(strings.ToLower(env), "_", "-")
	}
	if !s.flags[flag] {
		t.Errorf("%s: %s is not a stockd setting (stockd --help has no --%s)", where, name, flag)
	}
}

// checkArgs fails on any --flag in args that stockd does not have.
func (s stockdInfo) checkArgs(t *testing.T, where string, args []string) {
	t.Helper()
	for _, a := range args {
		if name, ok := strings.CutPrefix(a, "--"); ok {
			name, _, _ = strings.Cut(name, "=")
			s.checkSetting(t, where, name)
		}
	}
}

// ---- Dockerfile ----

// TestDockerfile_StampsTheVersion: the image's binaries report the VERSION and REVISION
// build args (a wrong -X path would leave them "devel" without a word).
func TestDockerfile_StampsTheVersion(t *testing.T) {
	builtStockd(t)
	for _, bin := range []string{"stockd", "stockctl"} {
		args := []string{"version"}
		if bin == "stockctl" {
			args = append(args, "--endpoints", "127.0.0.1:1", "--timeout", "100ms") // no cluster: the client's line only
		}
		out, _ := exec.Command(filepath.Join(buildDir, bin), args...).Output()
		want := bin + " " + buildArgs["VERSION"] + " (" + buildArgs["REVISION"][:12] + ", "
		if !strings.HasPrefix(string(out), want) {
			t.Errorf("%s version: %q, want it to start with %q", bin, out, want)
		}
	}
}

func TestDockerfile_BuildsStaticNonRootImage(t *testing.T) {
	s := builtStockd(t)
	for _, bin := range s.built {
		f, err := elf.Open(bin)
		if err != nil {
			t.Fatalf("%s: %v", bin, err)
		}
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				t.Errorf("%s is dynamically linked (it has an ELF interpreter); the distroless static image cannot run it", filepath.Base(bin))
			}
		}
		f.Close()
	}
	text := readFile(t, "Dockerfile")
	stages := strings.Split(text, "\nFROM ")
	final := stages[len(stages)-1]
	for _, want := range []string{"VOLUME /data", "EXPOSE 4001 5001", "HEALTHCHECK ", "ENTRYPOINT [\"/usr/local/bin/stockd\"]", "STOPSIGNAL SIGTERM"} {
		if !strings.Contains(final, want) {
			t.Errorf("final stage of the Dockerfile lacks %q", want)
		}
	}
	user := regexp.MustCompile(`(?m)^USER (\S+)`).FindStringSubmatch(final)
	if user == nil || user[1] == "root" || strings.HasPrefix(user[1], "0") {
		t.Errorf("final stage runs as %v; want a non-root USER", user)
	}
	env := regexp.MustCompile(`(STOCKD_[A-Z_]+)=`).FindAllStringSubmatch(final, -1)
	if len(env) == 0 {
		t.Error("the image sets no STOCKD_ defaults")
	}
	for _, e := range env {
		s.checkSetting(t, "Dockerfile ENV", e[1])
	}
	for _, bin := range []string{"stockd", "stockctl", "healthcheck"} {
		if !slices.Contains(s.built, filepath.Join(buildDir, bin)) {
			t.Errorf("the Dockerfile does not build %s", bin)
		}
	}
}

// ---- docker compose ----

type composeFile struct {
	Services map[string]struct {
		Image           string
		Command         []string
		Environment     map[string]string
		Ports           []string
		Volumes         []string
		StopSignal      string `yaml:"stop_signal"`
		StopGracePeriod string `yaml:"stop_grace_period"`
	}
	Volumes map[string]any
}

func TestCompose_ThreeNodesBootstrapAndJoin(t *testing.T) {
	s := builtStockd(t)
	var c composeFile
	decodeYAML(t, "docker-compose.yml", &c)
	if len(c.Services) != 3 {
		t.Fatalf("compose has %d services, want 3", len(c.Services))
	}
	for _, name := range []string{"n1", "n2", "n3"} {
		svc, ok := c.Services[name]
		if !ok {
			t.Fatalf("compose has no service %s", name)
		}
		where := "docker-compose.yml " + name
		s.checkArgs(t, where, svc.Command)
		for k := range svc.Environment {
			s.checkSetting(t, where, k)
		}
		if svc.Environment["STOCKD_ID"] != name {
			t.Errorf("%s: STOCKD_ID = %q, want %s", where, svc.Environment["STOCKD_ID"], name)
		}
		for _, adv := range []string{"STOCKD_HTTP_ADVERTISE", "STOCKD_RAFT_ADVERTISE"} {
			if !strings.HasPrefix(svc.Environment[adv], name+":") {
				t.Errorf("%s: %s = %q; peers must dial the service name", where, adv, svc.Environment[adv])
			}
		}
		wantCmd := []string{"--join", "n1:4001"}
		if name == "n1" {
			wantCmd = []string{"--bootstrap"}
		}
		if !slices.Equal(svc.Command, wantCmd) {
			t.Errorf("%s: command %q, want %q", where, svc.Command, wantCmd)
		}
		vol := name + "-data:/data"
		if !slices.Contains(svc.Volumes, vol) {
			t.Errorf("%s: volumes %q lack %s", where, svc.Volumes, vol)
		} else if _, ok := c.Volumes[name+"-data"]; !ok {
			t.Errorf("%s: volume %s-data is not declared", where, name)
		}
		if len(svc.Ports) != 1 || !strings.HasSuffix(svc.Ports[0], ":4001") {
			t.Errorf("%s: ports %q, want the HTTP port published", where, svc.Ports)
		}
		grace, err := time.ParseDuration(svc.StopGracePeriod)
		if svc.StopSignal != "SIGTERM" || err != nil || grace <= s.shutdownTimeout {
			t.Errorf("%s: stop_signal %q, stop_grace_period %q; want SIGTERM and more than --shutdown-timeout %v", where, svc.StopSignal, svc.StopGracePeriod, s.shutdownTimeout)
		}
	}
}

// ---- systemd ----

func TestSystemdUnit_HardenedAndGraceful(t *testing.T) {
	s := builtStockd(t)
	unit := parseUnit(t, "systemd/stockd.service")
	svc := unit["Service"]
	for key, want := range map[string]string{
		"Restart": "on-failure", "KillSignal": "SIGTERM", "StateDirectory": "stockd",
		"DynamicUser": "yes", "NoNewPrivileges": "yes", "ProtectSystem": "strict",
		"EnvironmentFile": "/etc/stockd/stockd.env", "CapabilityBoundingSet": "",
	} {
		if got, ok := svc[key]; !ok || got[len(got)-1] != want {
			t.Errorf("[Service] %s = %q, want %q", key, got, want)
		}
	}
	// A removed node must not be restarted in a loop by Restart=on-failure.
	if got := svc["RestartPreventExitStatus"]; !slices.Contains(got, s.removedExit) {
		t.Errorf("[Service] RestartPreventExitStatus = %q, want stockd's removed-from-the-cluster exit status %s", got, s.removedExit)
	}
	if got := svc["LimitNOFILE"]; len(got) == 0 {
		t.Error("[Service] sets no LimitNOFILE")
	} else if n, err := strconv.Atoi(got[0]); err != nil || n < 65536 {
		t.Errorf("[Service] LimitNOFILE = %s, want at least 65536", got[0])
	}
	stop := systemdDuration(t, svc["TimeoutStopSec"])
	execStart := strings.Fields(svc["ExecStart"][0])
	if filepath.Base(execStart[0]) != "stockd" {
		t.Errorf("ExecStart runs %s, want stockd", execStart[0])
	}
	s.checkArgs(t, "ExecStart", execStart[1:])

	// Settings: the unit's Environment= (commented examples too) and the example env file.
	envs := regexp.MustCompile(`(STOCKD_[A-Z_]+)=(\S*)`)
	for _, e := range envs.FindAllStringSubmatch(readFile(t, "systemd/stockd.service"), -1) {
		s.checkSetting(t, "stockd.service", e[1])
	}
	shutdown := s.shutdownTimeout
	for _, e := range envs.FindAllStringSubmatch(readFile(t, "systemd/stockd.env"), -1) {
		s.checkSetting(t, "stockd.env", e[1])
		if e[1] == "STOCKD_SHUTDOWN_TIMEOUT" {
			shutdown, _ = time.ParseDuration(e[2])
		}
	}
	if stop <= shutdown {
		t.Errorf("TimeoutStopSec %v must exceed the shutdown timeout %v, or systemd kills a node mid-handover", stop, shutdown)
	}
}

// parseUnit reads a systemd unit: section -> key -> values in order. Comments are skipped.
func parseUnit(t *testing.T, path string) map[string]map[string][]string {
	t.Helper()
	out := map[string]map[string][]string{}
	section := ""
	sc := bufio.NewScanner(strings.NewReader(readFile(t, path)))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
			out[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s: not a unit line: %q", path, line)
			}
			out[section][k] = append(out[section][k], v)
		}
	}
	return out
}

func systemdDuration(t *testing.T, v []string) time.Duration {
	t.Helper()
	if len(v) == 0 {
		t.Fatal("[Service] sets no TimeoutStopSec")
	}
	if n, err := strconv.Atoi(v[0]); err == nil {
		return time.Duration(n) * time.Second
	}
	d, err := time.ParseDuration(v[0])
	if err != nil {
		t.Fatalf("TimeoutStopSec=%s: %v", v[0], err)
	}
	return d
}

// ---- Kubernetes ----

type probe struct {
	HTTPGet struct {
		Path string
		Port string
	} `yaml:"httpGet"`
}

type container struct {
	Name    string
	Image   string
	Command []string
	Args    []string
	Env     []struct{ Name, Value string }
	Ports   []struct {
		Name          string
		ContainerPort int `yaml:"containerPort"`
	}
	ReadinessProbe *probe `yaml:"readinessProbe"`
	LivenessProbe  *probe `yaml:"livenessProbe"`
	VolumeMounts   []struct {
		Name      string
		MountPath string `yaml:"mountPath"`
	} `yaml:"volumeMounts"`
}

type labelSelector struct {
	MatchLabels map[string]string `yaml:"matchLabels"`
}

type k8sObject struct {
	Kind     string
	Metadata struct{ Name string }
	Spec     struct {
		// Service
		ClusterIP                string `yaml:"clusterIP"`
		PublishNotReadyAddresses bool   `yaml:"publishNotReadyAddresses"`
		Ports                    []struct {
			Name       string
			TargetPort string `yaml:"targetPort"`
		}
		// PodDisruptionBudget (Selector) and StatefulSet
		MaxUnavailable      any       `yaml:"maxUnavailable"`
		Selector            yaml.Node `yaml:"selector"`
		ServiceName         string    `yaml:"serviceName"`
		Replicas            int       `yaml:"replicas"`
		PodManagementPolicy string    `yaml:"podManagementPolicy"`
		Template            struct {
			Metadata struct{ Labels map[string]string }
			Spec     struct {
				TerminationGracePeriodSeconds int         `yaml:"terminationGracePeriodSeconds"`
				InitContainers                []container `yaml:"initContainers"`
				Containers                    []container
				Volumes                       []struct{ Name string }
			}
		}
		VolumeClaimTemplates []struct{ Metadata struct{ Name string } } `yaml:"volumeClaimTemplates"`
	}
}

func loadK8s(t *testing.T) map[string]k8sObject {
	t.Helper()
	f, err := os.Open("k8s/stockd.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	objs := map[string]k8sObject{}
	dec := yaml.NewDecoder(f)
	for {
		var o k8sObject
		err := dec.Decode(&o)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("k8s/stockd.yaml: %v", err)
		}
		objs[o.Kind+"/"+o.Metadata.Name] = o
	}
	return objs
}

func selectorLabels(t *testing.T, o k8sObject) map[string]string {
	t.Helper()
	// A Service's selector is a plain map; a workload's and a PDB's have matchLabels.
	var plain map[string]string
	if o.Kind == "Service" {
		if err := o.Spec.Selector.Decode(&plain); err != nil {
			t.Fatalf("%s selector: %v", o.Metadata.Name, err)
		}
		return plain
	}
	var ls labelSelector
	if err := o.Spec.Selector.Decode(&ls); err != nil {
		t.Fatalf("%s selector: %v", o.Metadata.Name, err)
	}
	return ls.MatchLabels
}

func TestK8s_StatefulSetWiring(t *testing.T) {
	s := builtStockd(t)
	objs := loadK8s(t)
	sts, ok := objs["StatefulSet/stockd"]
	if !ok {
		t.Fatalf("no StatefulSet stockd in k8s/stockd.yaml (have %v)", keys(objs))
	}
	pod := sts.Spec.Template
	podLabels := pod.Metadata.Labels

	headless, ok := objs["Service/"+sts.Spec.ServiceName]
	if !ok {
		t.Fatalf("serviceName %q names no Service", sts.Spec.ServiceName)
	}
	if headless.Spec.ClusterIP != "None" || !headless.Spec.PublishNotReadyAddresses {
		t.Errorf("Service %s: clusterIP %q, publishNotReadyAddresses %v; want a headless Service that publishes pods before they are ready (a pod is ready only once a leader is elected)",
			headless.Metadata.Name, headless.Spec.ClusterIP, headless.Spec.PublishNotReadyAddresses)
	}
	if sts.Spec.PodManagementPolicy != "Parallel" {
		t.Errorf("podManagementPolicy %q: want Parallel, or a full restart waits forever for stockd-0 to be ready", sts.Spec.PodManagementPolicy)
	}
	if sts.Spec.Replicas != 3 {
		t.Errorf("replicas = %d, want 3", sts.Spec.Replicas)
	}
	for name, o := range objs {
		if o.Kind == "Service" || o.Kind == "PodDisruptionBudget" || o.Kind == "StatefulSet" {
			for k, v := range selectorLabels(t, o) {
				if podLabels[k] != v {
					t.Errorf("%s selects %s=%s, which the pods do not carry (%v)", name, k, v, podLabels)
				}
			}
		}
	}
	pdb, ok := objs["PodDisruptionBudget/stockd"]
	if !ok || fmt.Sprint(pdb.Spec.MaxUnavailable) != "1" {
		t.Errorf("PodDisruptionBudget stockd: maxUnavailable %v, want 1", pdb.Spec.MaxUnavailable)
	}

	if len(pod.Spec.Containers) != 1 {
		t.Fatalf("want one container, have %d", len(pod.Spec.Containers))
	}
	c := pod.Spec.Containers[0]
	ports := map[string]int{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	if ports["http"] != 4001 || ports["raft"] != 5001 {
		t.Errorf("container ports %v, want http 4001 and raft 5001", ports)
	}
	for name, o := range objs {
		for _, p := range o.Spec.Ports {
			if o.Kind == "Service" && ports[p.TargetPort] == 0 {
				t.Errorf("%s port %s targets %q, not a container port", name, p.Name, p.TargetPort)
			}
		}
	}
	for _, pr := range []struct {
		name string
		p    *probe
		path string
	}{{"readinessProbe", c.ReadinessProbe, "/readyz"}, {"livenessProbe", c.LivenessProbe, "/healthz"}} {
		if pr.p == nil || pr.p.HTTPGet.Path != pr.path || ports[pr.p.HTTPGet.Port] != 4001 {
			t.Errorf("%s: %+v, want GET %s on the http port", pr.name, pr.p, pr.path)
		}
	}

	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
		if strings.HasPrefix(e.Name, "STOCKD_") {
			s.checkSetting(t, "StatefulSet env", e.Name)
		}
	}
	s.checkArgs(t, "StatefulSet args", c.Args)
	if env["STOCKD_ID"] != "$(POD_NAME)" {
		t.Errorf("STOCKD_ID = %q, want the pod name", env["STOCKD_ID"])
	}
	for _, adv := range []string{"STOCKD_HTTP_ADVERTISE", "STOCKD_RAFT_ADVERTISE"} {
		if !strings.HasPrefix(env[adv], "$(POD_NAME)."+sts.Spec.ServiceName+".") {
			t.Errorf("%s = %q, want the pod's name under the headless Service", adv, env[adv])
		}
	}

	// The data dir is the claim's mount; every mount has a volume.
	volumes := map[string]bool{}
	for _, v := range pod.Spec.Volumes {
		volumes[v.Name] = true
	}
	for _, v := range sts.Spec.VolumeClaimTemplates {
		volumes[v.Metadata.Name] = true
	}
	mounts := map[string]string{}
	for _, ct := range append(slices.Clone(pod.Spec.InitContainers), c) {
		for _, m := range ct.VolumeMounts {
			if !volumes[m.Name] {
				t.Errorf("container %s mounts %s, which is no volume or claim", ct.Name, m.Name)
			}
			if ct.Name == c.Name {
				mounts[m.MountPath] = m.Name
			}
		}
	}
	if len(sts.Spec.VolumeClaimTemplates) != 1 || mounts[env["STOCKD_DATA_DIR"]] != sts.Spec.VolumeClaimTemplates[0].Metadata.Name {
		t.Errorf("STOCKD_DATA_DIR %q is not the mount of the volume claim (mounts %v)", env["STOCKD_DATA_DIR"], mounts)
	}
	if grace := time.Duration(pod.Spec.TerminationGracePeriodSeconds) * time.Second; grace <= s.shutdownTimeout {
		t.Errorf("terminationGracePeriodSeconds %v must exceed --shutdown-timeout %v", grace, s.shutdownTimeout)
	}
}

// TestK8s_MembershipScript runs the init container's script for several pods and checks the
// --config file it writes: stockd-0 founds the cluster unless a peer already has one, the
// founding pods join as voters, later ones as nonvoters, all through their peers.
func TestK8s_MembershipScript(t *testing.T) {
	s := builtStockd(t)
	sts := loadK8s(t)["StatefulSet/stockd"]
	if len(sts.Spec.Template.Spec.InitContainers) != 1 {
		t.Fatal("want one init container")
	}
	init := sts.Spec.Template.Spec.InitContainers[0]
	if len(init.Args) != 1 || !slices.Equal(init.Command, []string{"/bin/sh", "-c"}) {
		t.Fatalf("init container: command %q args %d; want /bin/sh -c SCRIPT", init.Command, len(init.Args))
	}
	const configPath = "/run/stockd/membership.json"
	main := sts.Spec.Template.Spec.Containers[0]
	if !slices.Equal(main.Args, []string{"--config", configPath}) {
		t.Fatalf("stockd args %q, want --config %s", main.Args, configPath)
	}
	peer := func(i int) string { return fmt.Sprintf("stockd-%d.stockd.shop.svc.cluster.local:4001", i) }
	for _, tc := range []struct {
		pod        string
		peerIsUp   bool
		want       map[string]any
		wantJoinOf []int
	}{
		{pod: "stockd-0", want: map[string]any{"bootstrap": true}},
		{pod: "stockd-0", peerIsUp: true, wantJoinOf: []int{1, 2}, want: map[string]any{}},
		{pod: "stockd-1", wantJoinOf: []int{0, 2}, want: map[string]any{}},
		{pod: "stockd-2", wantJoinOf: []int{0, 1}, want: map[string]any{}},
		{pod: "stockd-3", wantJoinOf: []int{0, 1, 2}, want: map[string]any{"join-as-nonvoter": true}},
	} {
		t.Run(fmt.Sprintf("%s peer up %v", tc.pod, tc.peerIsUp), func(t *testing.T) {
			dir := t.TempDir()
			// busybox wget asks a peer's /readyz; here a stand-in answers up or down.
			wget := "#!/bin/sh\nexit 1\n"
			if tc.peerIsUp {
				wget = "#!/bin/sh\nexit 0\n"
			}
			if err := os.WriteFile(filepath.Join(dir, "wget"), []byte(wget), 0o755); err != nil {
				t.Fatal(err)
			}
			script := strings.ReplaceAll(init.Args[0], filepath.Dir(configPath), dir)
			cmd := exec.Command("/bin/sh", "-c", script)
			cmd.Env = []string{"PATH=" + dir + ":/usr/bin:/bin", "POD_NAME=" + tc.pod, "POD_NAMESPACE=shop", "CLUSTER_SIZE=3"}
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("script: %v\n%s", err, out)
			}
			var got map[string]any
			if err := json.Unmarshal([]byte(readFile(t, filepath.Join(dir, filepath.Base(configPath)))), &got); err != nil {
				t.Fatalf("the script wrote no JSON: %v", err)
			}
			for k := range got {
				s.checkSetting(t, "membership.json", k)
			}
			if tc.wantJoinOf != nil {
				var peers []string
				for _, i := range tc.wantJoinOf {
					peers = append(peers, peer(i))
				}
				tc.want["join"] = strings.Join(peers, ",")
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("config %v, want %v", got, tc.want)
			}
		})
	}
}

// ---- helpers ----

func decodeYAML(t *testing.T, path string, v any) {
	t.Helper()
	if err := yaml.Unmarshal([]byte(readFile(t, path)), v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
