package main

import (
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/vramseal/vramseal/stress"
)

func TestBenchHelpListsEveryTargetAsBenchMeasuresIt(t *testing.T) {
	help := helpOf(t, "bench")
	for _, target := range stress.BenchTargets() {
		line := regexp.MustCompile(`(?m)^  ` + regexp.QuoteMeta(target.Name) + ` +` + regexp.QuoteMeta(target.Want) + `$`)
		assert.Regexp(t, line, help, "the help lists %q with what it wants", target.Name)
		assert.Contains(t, help, "reference: "+target.Reference, target.Name)
	}
}
