// Command prometheus-check checks modelog's Prometheus files with Prometheus's
// own parsing packages, the code promtool's `check rules` and `check config`
// run, without promtool's build: promtool links every service-discovery
// client (AWS, Azure, GCP, Kubernetes...), which took half an hour to compile
// on a busy 2-core machine, longer than CI gives the whole suite.
//
//	prometheus-check rules FILE...   like `promtool check rules FILE...`
//	prometheus-check config FILE...  like `promtool check config FILE...`
//
// rules: rulefmt.ParseFile with promtool's defaults (unknown fields refused,
// UTF-8 names, the default PromQL parser) parses every expression and checks
// every group, label, annotation and template.
//
// config: config.LoadFile, the loader Prometheus itself starts with, and
// GetScrapeConfigs, then the rule files the config names, each checked as
// above. Importing config brings in the discovery framework and the remote
// write auth clients (Azure AD, Google IAM, SigV4) but not the discovery
// clients: those register themselves from discovery/install, which this does
// not import, so a config using, say, kubernetes_sd_configs is refused here as
// an unknown field. modelog's config uses static_configs only. Unlike promtool,
// static targets are not passed through the scraper's relabelling (the scrape
// package would bring in the TSDB); LoadFile already checks their labels.
//
// Output and exit status follow promtool: SUCCESS or FAILED with the errors
// per file, and a non-zero exit if any file failed.
package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
)

var logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

// checkRules prints each file's outcome and says whether all passed.
func checkRules(files []string) bool {
	ok := true
	p := parser.NewParser(parser.Options{})
	for _, f := range files {
		fmt.Println("Checking", f)
		groups, errs := rulefmt.ParseFile(f, false, model.UTF8Validation, p, logger)
		if len(errs) > 0 {
			ok = false
			fmt.Fprintln(os.Stderr, "  FAILED:")
			for _, err := range errs {
				fmt.Fprintln(os.Stderr, err)
			}
			continue
		}
		n := 0
		for _, g := range groups.Groups {
			n += len(g.Rules)
		}
		fmt.Printf("  SUCCESS: %d rules found\n", n)
	}
	return ok
}

// loadConfig returns the rule files a config names, or why it is not valid.
func loadConfig(file string) ([]string, error) {
	cfg, err := config.LoadFile(file, false, logger)
	if err != nil {
		return nil, err
	}
	if _, err := cfg.GetScrapeConfigs(); err != nil {
		return nil, fmt.Errorf("error loading scrape configs: %w", err)
	}
	var ruleFiles []string
	for _, pattern := range cfg.RuleFiles { // already relative to the config's directory
		matches, err := filepath.Glob(pattern)
		if err != nil {
			return nil, err
		}
		if len(matches) == 0 && !strings.Contains(pattern, "*") {
			return nil, fmt.Errorf("%q does not point to an existing file", pattern)
		}
		ruleFiles = append(ruleFiles, matches...)
	}
	return ruleFiles, nil
}

func checkConfigs(files []string) bool {
	ok := true
	for _, f := range files {
		fmt.Println("Checking", f)
		ruleFiles, err := loadConfig(f)
		if err != nil {
			ok = false
			fmt.Fprintln(os.Stderr, "  FAILED:", err)
			continue
		}
		fmt.Printf("  SUCCESS: %d rule files found\n", len(ruleFiles))
		fmt.Printf(" SUCCESS: %s is valid prometheus config file syntax\n", f)
		ok = checkRules(ruleFiles) && ok
	}
	return ok
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: prometheus-check rules FILE... | prometheus-check config FILE...")
}

func main() {
	if len(os.Args) < 3 {
		usage(os.Stderr)
		os.Exit(2)
	}
	var ok bool
	switch os.Args[1] {
	case "rules":
		ok = checkRules(os.Args[2:])
	case "config":
		ok = checkConfigs(os.Args[2:])
	default:
		usage(os.Stderr)
		os.Exit(2)
	}
	if !ok {
		os.Exit(1)
	}
}
