// Runs cdk-nag's AwsSolutions checks over synthesized CloudFormation
// templates, the way cdk-nag's README describes for existing templates:
// each template is brought into a stack with cloudformation-include and the
// checks run as an aspect at synthesis. Suppressions come from the
// templates themselves: each resource's "cdk_nag" metadata, which the Go
// stack writes (infra/stack/nag.go).
//
// usage: node nag.mjs <template.json>...
// Prints one JSON object: {"<template>": [{"rule", "level", "resource",
// "finding", "status", "reason"}, ...]}, every finding that is not
// compliant, suppressed or not (status "non-compliant", "suppressed",
// "error" or "suppressed-error").
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { App, Aspects, LegacyStackSynthesizer, Stack } from 'aws-cdk-lib';
import { CfnInclude } from 'aws-cdk-lib/cloudformation-include';
import { AwsSolutionsChecks } from 'cdk-nag';

const report = {};
for (const file of process.argv.slice(2)) {
  const findings = [];
  const entry = (status, d, extra = {}) => findings.push({
    rule: d.ruleId,
    level: d.ruleLevel,
    resource: d.resource.node.id,
    finding: d.findingId ?? '',
    status,
    ...extra,
  });
  const logger = {
    onCompliance() {},
    onNotApplicable() {},
    onNonCompliance: (d) => entry('non-compliant', d),
    onSuppressed: (d) => entry('suppressed', d, { reason: d.suppressionReason }),
    onError: (d) => entry('error', d, { reason: d.errorMessage }),
    onSuppressedError: (d) => entry('suppressed-error', d, { reason: d.errorSuppressionReason }),
  };
  const outdir = mkdtempSync(path.join(tmpdir(), 'stampede-nag-'));
  try {
    const app = new App({ outdir, analyticsReporting: false });
    // Adds nothing of its own (no bootstrap version parameter, which the
    // included template already has).
    const stack = new Stack(app, 'Nag', { synthesizer: new LegacyStackSynthesizer() });
    new CfnInclude(stack, 'Template', { templateFile: file });
    Aspects.of(app).add(new AwsSolutionsChecks({ reports: false, additionalLoggers: [logger] }));
    app.synth();
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
  report[path.basename(file)] = findings;
}
console.log(JSON.stringify(report));
