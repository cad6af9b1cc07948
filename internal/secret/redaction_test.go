package secret_test

import (
	"bytes"
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"log/slog"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vramseal/vramseal/audit"
	"github.com/vramseal/vramseal/cuda"
	"github.com/vramseal/vramseal/internal/secret"
	"github.com/vramseal/vramseal/sealer"
	"github.com/vramseal/vramseal/share"
	"github.com/vramseal/vramseal/stress"
	"github.com/vramseal/vramseal/supervisor"
)

// The purposes sealer and audit derive their keys under, as they document
// them; the test computes each key's bytes itself to look for them.
const (
	sealPurpose      = "vramseal/v1/shard-record-hmac-sha256"
	auditPurpose     = "vramseal/v1/audit-log"
	testPurposeLabel = "vramseal/test"
	testWorker       = "w1"
)

// holder builds a value of one exported type that holds key material, with
// keys derived from testToken for testWorker, followed by structs that
// embed it. A value with goroutines (a log, a runtime) is stopped first, so
// that printing it races with nothing; its keys stay in it.
type holder func(t *testing.T) []any

// holders has an entry for every exported type in the module that holds key
// material, by package and type name. TestEveryKeyHolderIsListed keeps it
// complete.
var holders = map[string]holder{
	"secret.Key": func(t *testing.T) []any {
		k := *mustDerive[purposeTest](t, testToken, testWorker)
		return []any{k, struct{ secret.Key[purposeTest] }{k}, struct{ *secret.Key[purposeTest] }{&k}}
	},
	"sealer.Key": func(t *testing.T) []any {
		k := sealKey(t)
		return []any{*k, struct{ sealer.Key }{*k}, struct{ *sealer.Key }{k}}
	},
	"audit.Key": func(t *testing.T) []any {
		k := auditKey(t)
		return []any{*k, struct{ audit.Key }{*k}, struct{ *audit.Key }{k}}
	},
	"audit.LogConfig": func(t *testing.T) []any {
		c := audit.LogConfig{Key: auditKey(t), WorkerID: testWorker}
		return []any{c, struct{ audit.LogConfig }{c}}
	},
	"audit.Log": func(t *testing.T) []any {
		l, err := audit.Open(filepath.Join(t.TempDir(), "audit.log"), audit.LogConfig{Key: auditKey(t)})
		require.NoError(t, err)
		require.NoError(t, l.Record(context.Background(), audit.Record{Event: "Probe", Severity: audit.SeverityInfo}))
		require.NoError(t, l.Close())
		return []any{l, struct{ *audit.Log }{l}}
	},
	"audit.HeadPublisher": func(t *testing.T) []any {
		l, err := audit.Open(filepath.Join(t.TempDir(), "audit.log"), audit.LogConfig{Key: auditKey(t)})
		require.NoError(t, err)
		p := audit.PublishHeads(l, audit.HeadConfig{Publish: func(audit.Head) {}})
		require.NoError(t, p.Record(context.Background(), audit.Record{Event: "Probe", Severity: audit.SeverityCritical}))
		t.Cleanup(func() { require.NoError(t, l.Close()); p.Close() })
		return []any{p, struct{ *audit.HeadPublisher }{p}}
	},
	"supervisor.Config": func(t *testing.T) []any {
		c := supervisor.Config{Key: sealKey(t), WorkerID: testWorker}
		return []any{c, struct{ supervisor.Config }{c}}
	},
	"supervisor.Key": func(t *testing.T) []any {
		var k *supervisor.Key = sealKey(t) // an alias of sealer.Key, printed as one
		return []any{*k, struct{ supervisor.Key }{*k}, struct{ *supervisor.Key }{k}}
	},
	"supervisor.Keys": func(t *testing.T) []any {
		k, err := supervisor.DeriveKeys(bytes.Clone(testToken), testWorker)
		require.NoError(t, err)
		return []any{k, *k, struct{ *supervisor.Keys }{k}}
	},
	"supervisor.OpenConfig": func(t *testing.T) []any {
		c := supervisor.OpenConfig{TokenFile: "token", Config: supervisor.Config{Key: sealKey(t), WorkerID: testWorker}}
		return []any{c, struct{ supervisor.OpenConfig }{c}}
	},
	"supervisor.RigConfig": func(t *testing.T) []any {
		c := supervisor.RigConfig{Config: supervisor.Config{Key: sealKey(t), WorkerID: testWorker}}
		return []any{c, struct{ supervisor.RigConfig }{c}}
	},
	"supervisor.Rig": func(t *testing.T) []any {
		rig := stoppedRig(t)
		return []any{rig, *rig, struct{ *supervisor.Rig }{rig}}
	},
	"supervisor.Runtime": func(t *testing.T) []any {
		rt := stoppedRig(t).Runtime
		return []any{rt, struct{ *supervisor.Runtime }{rt}}
	},
	"supervisor.Lease": func(t *testing.T) []any {
		rig, err := supervisor.MakeRig(context.Background(), supervisor.RigConfig{
			Capacities: []int64{1 << 20}, Config: supervisor.Config{Key: sealKey(t), WorkerID: testWorker},
		})
		require.NoError(t, err)
		s, err := rig.Seal(context.Background(), supervisor.SealRequest{ID: "probe", Size: 4, Data: bytes.NewReader([]byte("abcd"))})
		require.NoError(t, err)
		l, err := rig.Acquire(context.Background(), s)
		require.NoError(t, err)
		l.Release()
		require.NoError(t, rig.Stop(context.Background()))
		return []any{l, struct{ *supervisor.Lease }{l}}
	},
	"share.Config": func(t *testing.T) []any {
		c := share.Config{Runtime: stoppedRig(t).Runtime, Path: "share.sock"}
		return []any{c, struct{ share.Config }{c}}
	},
	"share.Server": func(t *testing.T) []any {
		srv, err := share.Listen(share.Config{Runtime: stoppedRig(t).Runtime, Path: filepath.Join(t.TempDir(), "share.sock")})
		require.NoError(t, err)
		require.NoError(t, srv.Close())
		return []any{srv, struct{ *share.Server }{srv}}
	},
	"stress.BaselineConfig": func(t *testing.T) []any {
		c := stress.BaselineConfig{Key: sealKey(t)}
		return []any{c, struct{ stress.BaselineConfig }{c}}
	},
	"stress.Baseline": func(t *testing.T) []any {
		sim, err := cuda.NewSim(cuda.SimConfig{Capacity: 1 << 20})
		require.NoError(t, err)
		b, err := stress.NewBaseline(stress.BaselineConfig{Devices: []cuda.Device{sim}, Key: sealKey(t)})
		require.NoError(t, err)
		require.NoError(t, b.Close())
		return []any{b, struct{ *stress.Baseline }{b}}
	},
}

// stoppedRig is a runtime over one small simulated GPU that signs with
// sealKey, stopped: its key stays in it.
func stoppedRig(t *testing.T) *supervisor.Rig {
	rig, err := supervisor.MakeRig(context.Background(), supervisor.RigConfig{
		Capacities: []int64{1 << 20}, Config: supervisor.Config{Key: sealKey(t), WorkerID: testWorker},
	})
	require.NoError(t, err)
	require.NoError(t, rig.Stop(context.Background()))
	return rig
}

func sealKey(t *testing.T) *sealer.Key {
	k, err := sealer.DeriveKey(testToken, testWorker)
	require.NoError(t, err)
	return k
}

func auditKey(t *testing.T) *audit.Key {
	k, err := audit.DeriveKey(testToken, testWorker)
	require.NoError(t, err)
	return k
}

// TestNoFormOfAKeyHolderShowsKeyBytes prints every type that holds key
// material through every fmt verb, as a value, a pointer, a named and an
// embedded field, a slice element, through slog's text and JSON handlers
// and encoding/json, and looks for the bytes of every key in any
// rendering.
func TestNoFormOfAKeyHolderShowsKeyBytes(t *testing.T) {
	var forms []string
	for _, purpose := range []string{sealPurpose, auditPurpose, testPurposeLabel} {
		b, err := hkdf.Key(sha256.New, testToken, nil, purpose+"\x00"+testWorker, secret.Len)
		require.NoError(t, err)
		forms = append(forms, leakForms(b)...)
	}
	forms = append(forms, leakForms(testToken)...)
	verbs := []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "% x", "%d", "%o", "%b", "%c", "%U", "%T", "%10.3v"}
	for name, build := range holders {
		t.Run(name, func(t *testing.T) {
			vs := build(t)
			all := wrappings(vs[0])
			for i, e := range vs[1:] {
				all[fmt.Sprintf("embedding struct %d", i+1)] = e
			}
			for wrapName, w := range all {
				for _, verb := range verbs {
					assertNoLeak(t, fmt.Sprintf(verb, w), forms, "%s of %s", verb, wrapName)
				}
				for hname, h := range map[string]func(*bytes.Buffer) slog.Handler{
					"slog text": func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
					"slog JSON": func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
				} {
					var out bytes.Buffer
					slog.New(h(&out)).Info("probe", "v", w)
					assertNoLeak(t, out.String(), forms, "%s of %s", hname, wrapName)
				}
				if js, err := json.Marshal(w); err == nil {
					assertNoLeak(t, string(js), forms, "JSON of %s", wrapName)
				}
			}
		})
	}
}

// wrappings are the ways v may be held: itself, a pointer to it, a named
// field and a slice element. (reflect.StructOf cannot build embedding
// structs whose field has methods; the holders build those.)
func wrappings(v any) map[string]any {
	rv := reflect.ValueOf(v)
	ptr := reflect.New(rv.Type())
	ptr.Elem().Set(rv)
	out := map[string]any{"value": v, "pointer": ptr.Interface()}
	for _, typ := range []reflect.Type{rv.Type(), ptr.Type()} {
		held := rv
		if typ == ptr.Type() {
			held = ptr
		}
		named := reflect.New(reflect.StructOf([]reflect.StructField{{Name: "Field", Type: typ}})).Elem()
		named.Field(0).Set(held)
		out["named field of type "+typ.String()] = named.Interface()
		slice := reflect.MakeSlice(reflect.SliceOf(typ), 1, 1)
		slice.Index(0).Set(held)
		out["slice of "+typ.String()] = slice.Interface()
	}
	return out
}

// leakForms are the renderings of b that must never appear.
func leakForms(b []byte) []string {
	forms := []string{
		hex.EncodeToString(b[:8]), strings.ToUpper(hex.EncodeToString(b[:8])), string(b[:8]),
		base64.StdEncoding.EncodeToString(b[:9]), fmt.Sprintf("% x", b[:6]),
		strings.Trim(fmt.Sprint(b[:6]), "[]"), strings.Trim(fmt.Sprintf("%o", b[:4]), "[]"),
		strings.Trim(fmt.Sprintf("%#v", b[:4]), "[]byte{}"),
	}
	return forms
}

func assertNoLeak(t *testing.T, out string, forms []string, msgAndArgs ...any) {
	t.Helper()
	for _, f := range forms {
		if strings.Contains(out, f) {
			assert.Fail(t, "key material in output", "found %q in %q; %s", f, out, fmt.Sprintf(msgAndArgs[0].(string), msgAndArgs[1:]...))
		}
	}
}

// TestEveryKeyHolderIsListed walks the module's source for every type that
// holds key material: a secret.Key, the audit chain's keyed HMAC, or a field
// (through pointers, slices, arrays, maps) of a type that does. Each
// exported one must be in holders. The unexported ones are logged: they
// are never handed to callers, and hold their keys through the types above.
func TestEveryKeyHolderIsListed(t *testing.T) {
	found := keyHolders(t, "../..") // the module root
	var missing []string
	for _, name := range found {
		_, listed := holders[name]
		switch {
		case listed:
		case ast.IsExported(name[strings.LastIndexByte(name, '.')+1:]) && !strings.HasPrefix(name, "main."):
			missing = append(missing, name)
		default:
			t.Logf("unexported key holder %s", name)
		}
	}
	assert.Empty(t, missing, "exported types holding key material with no redaction test; add them to holders")
	for name := range holders {
		assert.Contains(t, found, name, "holders lists a type that holds no key material")
	}
}

// keyHolders lists, as package.Type, every type declared in the non-test Go
// files under root that holds key material.
func keyHolders(t *testing.T, root string) []string {
	fields := map[string][]string{} // type -> the types its fields name
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		pkg := f.Name.Name
		ast.Inspect(f, func(n ast.Node) bool {
			spec, ok := n.(*ast.TypeSpec)
			if !ok {
				return true
			}
			name := pkg + "." + spec.Name.Name
			if spec.Assign.IsValid() { // an alias holds what it names
				fields[name] = append(fields[name], typeName(pkg, spec.Type))
			}
			if st, ok := spec.Type.(*ast.StructType); ok {
				for _, fld := range st.Fields.List {
					fields[name] = append(fields[name], typeName(pkg, fld.Type))
				}
			}
			return false
		})
		return nil
	})
	require.NoError(t, err)
	// The roots: the key buffer, and the audit chain, whose HMAC state is
	// keyed by the audit key.
	holds := map[string]bool{"secret.Key": true, "audit.chain": true}
	for changed := true; changed; {
		changed = false
		for typ, names := range fields {
			if !holds[typ] && slices.ContainsFunc(names, func(n string) bool { return holds[n] }) {
				holds[typ], changed = true, true
			}
		}
	}
	var out []string
	for typ := range holds {
		out = append(out, typ)
	}
	slices.Sort(out)
	return out
}

// typeName names the type expression e, declared in package pkg, as
// package.Type after stripping pointers, slices, arrays and maps.
func typeName(pkg string, e ast.Expr) string {
	for {
		switch x := e.(type) {
		case *ast.StarExpr:
			e = x.X
		case *ast.ArrayType:
			e = x.Elt
		case *ast.MapType:
			e = x.Value
		case *ast.IndexExpr: // a generic type, instantiated
			e = x.X
		case *ast.IndexListExpr:
			e = x.X
		case *ast.Ident:
			return pkg + "." + x.Name
		case *ast.SelectorExpr:
			if id, ok := x.X.(*ast.Ident); ok {
				return id.Name + "." + x.Sel.Name
			}
			return ""
		default:
			return ""
		}
	}
}
