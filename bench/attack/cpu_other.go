//go:build !unix

package attack

import "time"

func processCPU() time.Duration { return 0 }
