package app

import (
	"os"
	"syscall"
)

func isHUP(sig os.Signal) bool { return sig == syscall.SIGHUP }
