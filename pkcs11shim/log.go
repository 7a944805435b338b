package main

import (
	"fmt"
	"io"
	"log"
	"os"
	"sync"
	"sync/atomic"

	"github.com/gohsm/gohsm/hsm/ck"
)

// logLevel orders the log settings; a message is written when its level is
// at or below the configured one. Messages carry function names, CK_RV
// codes and configuration facts only: never a PIN, a key or a data byte.
type logLevel int32

const (
	logOff logLevel = iota
	logError
	logInfo
	logDebug
)

func parseLogLevel(s string) (logLevel, error) {
	switch s {
	case "off", "":
		return logOff, nil
	case "error":
		return logError, nil
	case "info":
		return logInfo, nil
	case "debug":
		return logDebug, nil
	}
	return logOff, fmt.Errorf("log %q: want off, error, info or debug", s)
}

func (l logLevel) String() string {
	return [...]string{"off", "error", "info", "debug"}[l]
}

// logger is read on every call, so the level is an atomic and the hot path
// costs one load when logging is off.
var logger struct {
	level atomic.Int32
	mu    sync.Mutex // guards out and file
	out   *log.Logger
	file  io.Closer
}

// setupLog applies the configuration's log settings. A log file that cannot
// be opened is reported on stderr and logging falls back to stderr, so a
// typo in log_file does not make the module unusable.
func setupLog(level logLevel, path string) {
	logger.mu.Lock()
	defer logger.mu.Unlock()
	if logger.file != nil {
		logger.file.Close()
		logger.file = nil
	}
	var w io.Writer = os.Stderr
	if level != logOff && path != "" {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			fmt.Fprintf(os.Stderr, "gohsm: log_file: %v; logging to stderr\n", err)
		} else {
			w, logger.file = f, f
		}
	}
	logger.out = log.New(w, fmt.Sprintf("gohsm[%d]: ", os.Getpid()), log.LstdFlags|log.Lmicroseconds)
	logger.level.Store(int32(level))
}

func logEnabled(l logLevel) bool { return logLevel(logger.level.Load()) >= l }

func logf(l logLevel, format string, args ...any) {
	if !logEnabled(l) {
		return
	}
	logger.mu.Lock()
	defer logger.mu.Unlock()
	if logger.out != nil {
		logger.out.Printf(format, args...)
	}
}

// logCall records one C_ call: every call at debug, failures at info. The
// codes that are part of normal operation (a size query's
// CKR_BUFFER_TOO_SMALL, a failed verification) are failures too; at info
// level the log is meant for diagnosing a client, not for alerting.
func logCall(fn string, rv ck.RV) {
	switch {
	case logEnabled(logDebug):
		logf(logDebug, "%s -> %v", fn, rv)
	case rv != ck.CKR_OK && logEnabled(logInfo):
		logf(logInfo, "%s -> %v", fn, rv)
	case (rv == ck.CKR_GENERAL_ERROR || rv == ck.CKR_DEVICE_ERROR) && logEnabled(logError):
		logf(logError, "%s -> %v", fn, rv)
	}
}

// logPanic records a recovered panic. The panic value may describe a bug in
// terms of data, so only its type is logged below debug level.
func logPanic(fn string, r any) {
	if logEnabled(logDebug) {
		logf(logDebug, "%s: panic: %v", fn, r)
		return
	}
	logf(logError, "%s: panic (%T) -> CKR_GENERAL_ERROR", fn, r)
}
