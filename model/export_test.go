package model

import "io"

// What the tests outside the package (model_test, which may import test
// helpers that import model) need of its internals.

// SourceData is the stream a Source seals from.
func SourceData(s *Source) io.Reader { return s.data }

// Uncovered is what the ModelVerified record will name as not covered.
func Uncovered(id *Identity) []string { return id.uncovered }
