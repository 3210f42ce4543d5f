package main

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/mqantgen/mqantgen/bench/loadgen"
)

// Phases of a run, as samples are labelled.
const (
	phaseIdle  = "idle"  // server up, no client yet
	phaseSetup = "setup" // clients connecting, logging in, joining
	phaseLoad  = "load"  // every client chatting
	phaseAfter = "after" // clients gone
)

// sample is the server process at one moment.
type sample struct {
	At         time.Duration // since the server started
	Phase      string
	RSS        int64 // bytes
	Goroutines int
	FDs        int
}

// sampler reads a process's figures.
type sampler struct {
	pid    int
	pprof  string // host:port of its -pprof listener
	client *http.Client
}

func (s *sampler) take(at time.Duration, phase string) (sample, error) {
	rss, err := loadgen.ReadRSS(s.pid)
	if err != nil {
		return sample{}, err
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", s.pid))
	if err != nil {
		return sample{}, err
	}
	g, err := s.goroutines()
	if err != nil {
		return sample{}, err
	}
	return sample{At: at, Phase: phase, RSS: rss, Goroutines: g, FDs: len(fds)}, nil
}

// goroutines reads the count from the first line of the goroutine profile,
// "goroutine profile: total N", without fetching stacks beyond it.
func (s *sampler) goroutines() (int, error) {
	resp, err := s.client.Get("http://" + s.pprof + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil {
		return 0, fmt.Errorf("goroutine profile: %w", err)
	}
	n, ok := strings.CutPrefix(strings.TrimSpace(line), "goroutine profile: total ")
	if !ok {
		return 0, fmt.Errorf("goroutine profile starts %q", line)
	}
	return strconv.Atoi(n)
}
