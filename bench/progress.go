package bench

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// progress is a one-line display on a terminal's stderr: a bar, the step
// count, what runs now and an estimate of the time left. Hand-rolled rather
// than mpb: one line, redrawn once per measurement, needs no goroutine, no
// terminal-width probing and no three extra modules in go.sum.
type progress struct {
	w      io.Writer
	total  int
	n      int
	start  time.Time
	drawn  bool
	maxLen int
}

func newProgress(w io.Writer, total int) *progress {
	return &progress{w: w, total: total, start: time.Now()}
}

// step announces the measurement about to run.
func (p *progress) step(what string) {
	if p.w == nil || p.total == 0 {
		return
	}
	eta := "?"
	if p.n > 0 {
		per := time.Since(p.start) / time.Duration(p.n)
		eta = (per * time.Duration(p.total-p.n)).Round(time.Second).String()
	}
	const width = 24
	fill := width * p.n / p.total
	line := fmt.Sprintf("[%s%s] %d/%d %s, left ~%s", strings.Repeat("#", fill), strings.Repeat("-", width-fill), p.n, p.total, what, eta)
	pad := ""
	if len(line) < p.maxLen {
		pad = strings.Repeat(" ", p.maxLen-len(line))
	}
	p.maxLen = max(p.maxLen, len(line))
	fmt.Fprintf(p.w, "\r%s%s", line, pad)
	p.drawn = true
	p.n++
}

func (p *progress) done() {
	if p.w != nil && p.drawn {
		fmt.Fprintf(p.w, "\r%s\r", strings.Repeat(" ", p.maxLen))
	}
}
