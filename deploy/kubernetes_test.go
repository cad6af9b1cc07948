package deploy

import (
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// manifestDir holds the Kubernetes manifests under test.
const manifestDir = "kubernetes"

// manifests are the files in manifestDir and the API types they hold.
type manifests struct {
	namespace corev1.Namespace
	secret    corev1.Secret
	daemonSet appsv1.DaemonSet
	monitor   monitoringv1.PodMonitor
	rule      monitoringv1.PrometheusRule
}

// decodeManifests decodes every manifest strictly: an unknown or repeated
// field anywhere fails, as does a file of another kind or apiVersion, and a
// file in manifestDir no test knows.
func decodeManifests(t *testing.T) *manifests {
	t.Helper()
	m := &manifests{}
	files := map[string]struct {
		into       any
		typeMeta   *metav1.TypeMeta
		apiVersion string
		kind       string
	}{
		"00-namespace.yaml":      {&m.namespace, &m.namespace.TypeMeta, "v1", "Namespace"},
		"token/secret.yaml":      {&m.secret, &m.secret.TypeMeta, "v1", "Secret"},
		"20-daemonset.yaml":      {&m.daemonSet, &m.daemonSet.TypeMeta, "apps/v1", "DaemonSet"},
		"30-podmonitor.yaml":     {&m.monitor, &m.monitor.TypeMeta, "monitoring.coreos.com/v1", monitoringv1.PodMonitorsKind},
		"40-prometheusrule.yaml": {&m.rule, &m.rule.TypeMeta, "monitoring.coreos.com/v1", monitoringv1.PrometheusRuleKind},
	}
	require.NoError(t, filepath.WalkDir(manifestDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		name, err := filepath.Rel(manifestDir, path)
		if err != nil {
			return err
		}
		_, known := files[filepath.ToSlash(name)]
		assert.True(t, known, "%s: a manifest no test decodes", name)
		return nil
	}))
	for name, f := range files {
		data, err := os.ReadFile(filepath.Join(manifestDir, name))
		require.NoError(t, err)
		require.NotContains(t, "\n"+string(data), "\n---", "%s: one object per file", name)
		require.NoError(t, yaml.UnmarshalStrict(data, f.into), name)
		assert.Equal(t, f.apiVersion, f.typeMeta.APIVersion, name)
		assert.Equal(t, f.kind, f.typeMeta.Kind, name)
	}
	return m
}

func TestKubernetesManifestsDecodeStrictly(t *testing.T) {
	m := decodeManifests(t)
	for _, meta := range []metav1.ObjectMeta{m.secret.ObjectMeta, m.daemonSet.ObjectMeta, m.monitor.ObjectMeta, m.rule.ObjectMeta} {
		assert.Equal(t, m.namespace.Name, meta.Namespace, "%s lives in the namespace", meta.Name)
	}
}

func TestKubernetesManifestsFailClosedOnUnknownFields(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(manifestDir, "20-daemonset.yaml"))
	require.NoError(t, err)
	typo := strings.Replace(string(data), "readinessProbe:", "readynessProbe:", 1)
	require.NotEqual(t, string(data), typo)
	var ds appsv1.DaemonSet
	assert.ErrorContains(t, yaml.UnmarshalStrict([]byte(typo), &ds), "readynessProbe", "a misspelt field is refused, not dropped")
}

// container is the DaemonSet's vramseal container.
func container(t *testing.T, m *manifests) corev1.Container {
	t.Helper()
	containers := m.daemonSet.Spec.Template.Spec.Containers
	require.Len(t, containers, 1)
	return containers[0]
}

// flag is the value of --name=value in args, or "" when absent.
func flag(args []string, name string) string {
	for _, arg := range args {
		if value, ok := strings.CutPrefix(arg, "--"+name+"="); ok {
			return value
		}
	}
	return ""
}

func TestDaemonSetRunsOneWorkerPerGPUNode(t *testing.T) {
	m := decodeManifests(t)
	spec := m.daemonSet.Spec.Template.Spec
	c := container(t, m)
	assert.Equal(t, m.daemonSet.Spec.Selector.MatchLabels, map[string]string{"app.kubernetes.io/name": "vramseal"})
	assert.Subset(t, m.daemonSet.Spec.Template.Labels, m.daemonSet.Spec.Selector.MatchLabels)
	require.Equal(t, "run", c.Args[0])
	assert.Equal(t, "cuda", flag(c.Args, "backend"))

	gpus := c.Resources.Limits["nvidia.com/gpu"]
	assert.True(t, gpus.Cmp(resource.MustParse("1")) >= 0, "asks for GPUs: %s", gpus.String())

	// Probes: liveness on /healthz, readiness on /readyz, on the port the
	// worker listens on.
	require.NotNil(t, c.LivenessProbe)
	require.NotNil(t, c.ReadinessProbe)
	assert.Equal(t, "/healthz", c.LivenessProbe.HTTPGet.Path)
	assert.Equal(t, "/readyz", c.ReadinessProbe.HTTPGet.Path)
	require.Len(t, c.Ports, 1)
	for _, p := range []*corev1.Probe{c.LivenessProbe, c.ReadinessProbe} {
		assert.Equal(t, c.Ports[0].Name, p.HTTPGet.Port.String())
	}
	assert.Equal(t, ":"+strconv.Itoa(int(c.Ports[0].ContainerPort)), flag(c.Args, "listen"))

	// The token: the Secret's key, mounted as a plain, private file that
	// --token-file names.
	tokenFile := flag(c.Args, "token-file")
	i := slices.IndexFunc(c.VolumeMounts, func(v corev1.VolumeMount) bool { return v.MountPath == tokenFile })
	require.GreaterOrEqual(t, i, 0, "a volume mounted at --token-file %s", tokenFile)
	mount := c.VolumeMounts[i]
	assert.True(t, mount.ReadOnly)
	volume := volumeNamed(t, spec, mount.Name)
	require.NotNil(t, volume.Secret, "the token comes from a Secret")
	assert.Equal(t, m.secret.Name, volume.Secret.SecretName)
	assert.Contains(t, m.secret.Data, mount.SubPath, "the mounted key is the Secret's")
	require.NotNil(t, volume.Secret.DefaultMode)
	assert.EqualValues(t, 0o400, *volume.Secret.DefaultMode, "vramseal refuses a token others may read")

	// The audit log: in $STATE_DIRECTORY, on the node, so it outlives the pod.
	stateDir := ""
	for _, e := range c.Env {
		if e.Name == "STATE_DIRECTORY" {
			stateDir = e.Value
		}
	}
	require.NotEmpty(t, stateDir, "the default audit log follows $STATE_DIRECTORY")
	assert.Empty(t, flag(c.Args, "audit-log"))
	i = slices.IndexFunc(c.VolumeMounts, func(v corev1.VolumeMount) bool { return v.MountPath == stateDir })
	require.GreaterOrEqual(t, i, 0, "a volume at $STATE_DIRECTORY")
	assert.False(t, c.VolumeMounts[i].ReadOnly)
	assert.NotNil(t, volumeNamed(t, spec, c.VolumeMounts[i].Name).HostPath, "the audit log stays on the node")

	// No privilege: no capabilities, no escalation, a read-only root.
	sc := c.SecurityContext
	require.NotNil(t, sc)
	assert.Equal(t, []corev1.Capability{"ALL"}, sc.Capabilities.Drop)
	assert.Empty(t, sc.Capabilities.Add)
	assert.False(t, *sc.AllowPrivilegeEscalation)
	assert.False(t, *sc.Privileged)
	assert.True(t, *sc.ReadOnlyRootFilesystem)

	// Stopping frees VRAM and flushes the log within vramseal's own minute.
	require.NotNil(t, spec.TerminationGracePeriodSeconds)
	assert.GreaterOrEqual(t, time.Duration(*spec.TerminationGracePeriodSeconds)*time.Second, 65*time.Second)
}

// volumeNamed is the pod's volume called name.
func volumeNamed(t *testing.T, spec corev1.PodSpec, name string) corev1.Volume {
	t.Helper()
	i := slices.IndexFunc(spec.Volumes, func(v corev1.Volume) bool { return v.Name == name })
	require.GreaterOrEqual(t, i, 0, "volume %q", name)
	return spec.Volumes[i]
}

func TestPodMonitorScrapesTheWorkers(t *testing.T) {
	m := decodeManifests(t)
	assert.Equal(t, m.daemonSet.Spec.Selector.MatchLabels, m.monitor.Spec.Selector.MatchLabels)
	require.Len(t, m.monitor.Spec.PodMetricsEndpoints, 1)
	endpoint := m.monitor.Spec.PodMetricsEndpoints[0]
	require.NotNil(t, endpoint.Port)
	assert.Equal(t, container(t, m).Ports[0].Name, *endpoint.Port)
	assert.Equal(t, "/metrics", endpoint.Path)
}

// metricName matches the worker's series in a PromQL expression.
var metricName = regexp.MustCompile(`\bvram_[a-z_]+\b`)

func TestPrometheusRuleAlertsOnFailStopAndUnverifiedShards(t *testing.T) {
	m := decodeManifests(t)
	rules := map[string]monitoringv1.Rule{}
	for _, g := range m.rule.Spec.Groups {
		for _, r := range g.Rules {
			rules[r.Alert] = r
		}
	}
	failStop, ok := rules["VramsealFailStopped"]
	require.True(t, ok)
	assert.Contains(t, failStop.Expr.String(), "vram_failstopped")
	assert.Contains(t, failStop.Expr.String(), `kube_pod_container_status_last_terminated_exitcode{namespace="`+m.namespace.Name+`", container="`+container(t, m).Name+`"} == 3`,
		"the fail-stop exit code, for when no scrape saw the gauge")
	assert.Equal(t, "critical", failStop.Labels["severity"])

	rejected, ok := rules["VramsealModelRejected"]
	require.True(t, ok)
	assert.Contains(t, rejected.Expr.String(), "== 4", "exit 4: not the published model")

	stale, ok := rules["VramsealShardNotVerified"]
	require.True(t, ok)
	threshold, found := strings.CutPrefix(stale.Expr.String(), "vram_shard_seconds_since_verified > ")
	require.True(t, found, "expr %q", stale.Expr.String())
	seconds, err := strconv.Atoi(strings.TrimSpace(threshold))
	require.NoError(t, err)
	interval, err := time.ParseDuration(flag(container(t, m).Args, "verify-interval"))
	require.NoError(t, err)
	assert.Greater(t, time.Duration(seconds)*time.Second, 3*interval,
		"the alert waits out the freshness window, three scrub cycles of --verify-interval")
	assert.Equal(t, "critical", stale.Labels["severity"])

	back, ok := rules["VramsealAuditHeadWentBack"]
	require.True(t, ok, "an alert for a head seq that goes backwards")
	assert.Contains(t, back.Expr.String(), "max by (node) (vram_audit_head_seq)")
	assert.Equal(t, "critical", back.Labels["severity"])
	require.Len(t, m.monitor.Spec.PodMetricsEndpoints, 1)
	assert.Contains(t, fmt.Sprint(m.monitor.Spec.PodMetricsEndpoints[0].RelabelConfigs), "node", "the head is followed per node: the series carry it")

	// Every vram_* series the rules name is one the worker exports.
	exported := workerSeries(t)
	for name, r := range rules {
		for _, series := range metricName.FindAllString(r.Expr.String(), -1) {
			assert.True(t, exported[series], "%s: the worker exports no %s; it exports %v", name, series, slices.Sorted(maps.Keys(exported)))
		}
	}
}

// quotedSeries matches a vram_* series name as Go source spells it.
var quotedSeries = regexp.MustCompile(`"(vram_[a-z_]+)"`)

// workerSeries are the vram_* names in the worker's non-test Go files: the
// series it exports.
func workerSeries(t *testing.T) map[string]bool {
	t.Helper()
	paths, err := filepath.Glob("../cmd/vramseal/*.go")
	require.NoError(t, err)
	series := map[string]bool{}
	for _, p := range paths {
		if strings.HasSuffix(p, "_test.go") {
			continue
		}
		data, err := os.ReadFile(p)
		require.NoError(t, err)
		for _, m := range quotedSeries.FindAllStringSubmatch(string(data), -1) {
			series[m[1]] = true
		}
	}
	require.NotEmpty(t, series, "the worker's sources name no vram_* series")
	return series
}
