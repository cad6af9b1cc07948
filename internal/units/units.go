// Package units words sizes and rates for people: binary units, one decimal.
package units

import (
	"fmt"
	"math"
	"time"
)

// Bytes formats n in binary units, such as "1.5 GiB" or "512 B".
func Bytes(n int64) string {
	const unit = 1024
	if n < unit && n > -unit {
		return fmt.Sprintf("%d B", n)
	}
	v := float64(n)
	names := []string{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	i := -1
	// Step up while the value would print as 1024.0 or more, so that
	// 1 MiB - 1 reads "1.0 MiB", not "1024.0 KiB".
	for math.Abs(v) >= unit-0.05 && i < len(names)-1 {
		v /= unit
		i++
	}
	return fmt.Sprintf("%.1f %s", v, names[i])
}

// Rate is n bytes over d, in binary units per second, such as
// "1.5 GiB/s"; "n/a" when d is not positive.
func Rate(n int64, d time.Duration) string {
	if d <= 0 {
		return "n/a"
	}
	return Bytes(int64(float64(n)/d.Seconds())) + "/s"
}
