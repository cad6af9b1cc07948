package secret_test

import (
	"go/ast"
	"go/parser"
	"go/printer"
	"go/token"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestMACsAreComparedInConstantTime walks the module's non-test source for
// comparisons of MACs and signatures (an operand whose expression names a
// mac or a signature; plain digests of public data are no secret) and fails on any made with ==, !=, bytes.Equal,
// bytes.Compare, slices.Equal or reflect.DeepEqual: they return at the first
// differing byte, so their timing tells a forger how much of a guess was
// right. hmac.Equal and subtle.ConstantTimeCompare are the only ways.
// It also checks that the walk sees the comparisons it defends (record
// signatures in sealer, the audit chain's macs).
func TestMACsAreComparedInConstantTime(t *testing.T) {
	fset := token.NewFileSet()
	constantTime := map[string]int{} // file -> hmac.Equal calls on MACs
	err := filepath.WalkDir("../..", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel("../..", path)
		ast.Inspect(f, func(n ast.Node) bool {
			switch x := n.(type) {
			case *ast.BinaryExpr:
				if (x.Op == token.EQL || x.Op == token.NEQ) && (namesMAC(fset, x.X) || namesMAC(fset, x.Y)) && !isNilOrLen(x.X) && !isNilOrLen(x.Y) {
					assert.Fail(t, "variable-time MAC comparison", "%s: %s", fset.Position(x.Pos()), render(fset, x))
				}
			case *ast.CallExpr:
				name := render(fset, x.Fun)
				macArg := false
				for _, a := range x.Args {
					macArg = macArg || namesMAC(fset, a)
				}
				switch {
				case !macArg:
				case name == "hmac.Equal" || name == "subtle.ConstantTimeCompare":
					constantTime[filepath.ToSlash(rel)]++
				case name == "bytes.Equal" || name == "bytes.Compare" || name == "slices.Equal" || name == "reflect.DeepEqual":
					assert.Fail(t, "variable-time MAC comparison", "%s: %s", fset.Position(x.Pos()), render(fset, x))
				}
			}
			return true
		})
		return nil
	})
	require.NoError(t, err)
	for _, file := range []string{"sealer/sign.go", "sealer/shard.go", "audit/line.go"} {
		assert.Positive(t, constantTime[file], "%s compares MACs with hmac.Equal", file)
	}
}

// namesMAC reports whether e's source names a MAC or a signature.
func namesMAC(fset *token.FileSet, e ast.Expr) bool {
	s := strings.ToLower(render(fset, e))
	return strings.Contains(s, "mac") || strings.Contains(s, "signature")
}

// isNilOrLen reports whether e is nil or a len call, which compare no bytes.
func isNilOrLen(e ast.Expr) bool {
	if id, ok := e.(*ast.Ident); ok && id.Name == "nil" {
		return true
	}
	if c, ok := e.(*ast.CallExpr); ok {
		if id, ok := c.Fun.(*ast.Ident); ok && id.Name == "len" {
			return true
		}
	}
	if _, ok := e.(*ast.BasicLit); ok {
		return true
	}
	return false
}

func render(fset *token.FileSet, n ast.Node) string {
	var b strings.Builder
	_ = printer.Fprint(&b, fset, n)
	return b.String()
}
