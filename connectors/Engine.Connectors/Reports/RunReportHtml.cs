using System.Globalization;
using System.Net;
using System.Text;
using Engine.Runs;

namespace Engine.Connectors.Reports;

/// <summary>
/// Renders a <see cref="RunReport"/> as one self-contained HTML page: inline CSS, inline SVG charts
/// (<see cref="SvgCharts"/>), a few lines of inline script (sortable tables) and the figures as embedded JSON. A
/// Content-Security-Policy forbids every fetch, so the page provably needs no network.
/// <para>
/// Every number shown is one of the report's figures, printed one way: counts with thousands separators, rates as
/// percentages with one decimal, seconds with two or three decimals, AUC, PSI and scores with four. The element that
/// shows it carries <c>data-figure="&lt;name&gt;"</c> and <c>data-value="&lt;raw value&gt;"</c> (invariant culture,
/// round-trip precision; <c>data-unit="%"</c> when the text is the value × 100), so a test or a scraper can check what
/// is shown against the manifest without parsing prose.
/// </para>
/// </summary>
internal static class RunReportHtml
{
    private static readonly CultureInfo Invariant = CultureInfo.InvariantCulture;

    public static string Render(RunReport report)
    {
        var html = new StringBuilder(64 * 1024);
        html.Append("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
        html.Append("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">\n");
        html.Append("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
        html.Append(Invariant, $"<title>Run {E(report.RunId)} · {E(report.Workspace)}</title>\n<style>{Css}</style>\n</head>\n<body>\n<main>\n");
        Header(html, report);
        Headlines(html, report);
        Segments(html, report);
        Identity(html, report);
        Scores(html, report);
        Delivery(html, report);
        Holdouts(html, report);
        Stages(html, report);
        html.Append(Invariant, $"<footer>Generated {E(Time(report.GeneratedAt))} by engine {E(report.EngineVersion)} from the run's manifest, run_results.json, the model registry, the delivery report and the holdout measurement. The same figures: report.json beside this file.</footer>\n");
        html.Append("</main>\n");
        // The figures for scripts and scrapers; System.Text.Json escapes '<', so the JSON cannot close the element early.
        html.Append("<script type=\"application/json\" id=\"report-data\">").Append(Encoding.UTF8.GetString(report.ToUtf8Json())).Append("</script>\n");
        html.Append("<script>").Append(Script).Append("</script>\n</body>\n</html>\n");
        return html.ToString();
    }

    private static void Header(StringBuilder html, RunReport report)
    {
        html.Append(Invariant, $"<header><h1>Run <span data-figure=\"run.run_id\" data-value=\"{E(report.RunId)}\">{E(report.RunId)}</span></h1>");
        html.Append(Invariant, $"<p class=\"meta\">workspace <b>{E(report.Workspace)}</b> · <span class=\"badge {StatusClass(report.Status)}\" data-figure=\"run.status\" data-value=\"{E(report.Status)}\">{E(report.Status)}</span>");
        html.Append(Invariant, $" · as of <b>{E(Time(report.AsOf))}</b> · started {E(Time(report.StartedAt))} · finished {E(Time(report.FinishedAt))}</p>");
        if (report.Error is { } error)
        {
            html.Append(Invariant, $"<p class=\"error\">{E(error)}</p>");
        }
        if (report.Identity is { Mode: "incremental", FilesRead: 0 } identity)
        {
            html.Append(Invariant, $"<p class=\"note\">No new input since run {E(identity.PreviousRunId ?? "?")}: no file was read tonight, so any change below comes from the later as-of time alone (time windows, recency).</p>");
        }
        html.Append("</header>\n");
    }

    private static void Headlines(StringBuilder html, RunReport report)
    {
        html.Append("<section class=\"tiles\">");
        if (report.Identity is { } identity)
        {
            Tile(html, "profiles", Count("identity.profiles", identity.Profiles), $"from {CountText(identity.Identifiers)} identifiers");
        }
        var activation = report.Activation;
        Tile(html, "segments reaching a channel", $"{Count("activation.segments_reached", activation.SegmentsReached)} of {Count("activation.segments_built", activation.SegmentsBuilt)}",
            activation.Rate is { } rate ? $"activation rate {Percent("activation.rate", rate)}" : "no segment built");
        if (report.Delivery is { } delivery)
        {
            Tile(html, "records delivered", $"{Count("delivery.delivered", delivery.Delivered)} of {Count("delivery.processed", delivery.Processed)}",
                delivery.DeliveredRate is { } delivered ? $"{Percent("delivery.delivered_rate", delivered)} of those processed" : "nothing to deliver");
            Tile(html, "time to activation", delivery.SecondsToDelivery is { } wait
                ? $"{Seconds("delivery.seconds_to_delivery.p50", wait.P50, 3)} s"
                : "–", delivery.SecondsToDelivery is { } tail ? $"p50; p95 {Seconds("delivery.seconds_to_delivery.p95", tail.P95, 3)} s" : "nothing delivered");
        }
        else
        {
            Tile(html, "delivery", "not delivered", "run with --deliver (or engine deliver, then engine report)");
        }
        Tile(html, "run time", $"{Seconds("run.seconds", report.Stages.Sum(s => s.DurationSeconds), 2)} s", report.Stages.Count == 1 ? "1 stage" : $"{report.Stages.Count} stages");
        html.Append("</section>\n");
    }

    private static void Segments(StringBuilder html, RunReport report)
    {
        html.Append("<section><h2>Segments</h2>");
        if (report.Segments.Count == 0)
        {
            html.Append(Invariant, $"<p class=\"note\">{Missing(report, "built no segments", "segments")}</p></section>\n");
            return;
        }
        html.Append("<table class=\"sortable\"><thead><tr><th>segment</th><th>members</th><th>entered</th><th>exited</th><th>processed tonight</th><th>delivered tonight</th><th>reaches</th></tr></thead><tbody>");
        foreach (var segment in report.Segments)
        {
            var name = $"segment.{segment.Name}";
            html.Append(Invariant, $"<tr><td>{E(segment.Name)}{(segment.Declared ? "" : " <i>(removed)</i>")}</td>");
            html.Append(Invariant, $"<td>{Count(name + ".members", segment.Members)}</td><td>{Count(name + ".entered", segment.Entered)}</td><td>{Count(name + ".exited", segment.Exited)}</td>");
            html.Append(Invariant, $"<td>{Count(name + ".processed", segment.Processed)}</td><td>{Count(name + ".delivered", segment.Delivered)}</td>");
            html.Append(Invariant, $"<td>{(segment.ReachedDestinations.Count == 0 ? "<span class=\"warn\">no destination</span>" : E(string.Join(", ", segment.ReachedDestinations)))}</td></tr>");
        }
        html.Append("</tbody></table>");
        html.Append(Invariant, $"<p class=\"caption\">A segment reaches a destination once a record of it was delivered there, tonight or in one of the {report.Activation.RunsConsidered} runs shown below.</p>");

        var runs = report.History.Select(r => r.RunId).ToList();
        var names = report.Segments.Select(s => s.Name).ToList();
        foreach (var run in report.History)
        {
            names.AddRange(run.Segments.Keys.Where(k => !names.Contains(k)));
        }
        var series = names.Select((n, i) => new Series(n, SvgCharts.Palette[i % SvgCharts.Palette.Length],
            report.History.Select(r => r.Segments.TryGetValue(n, out var f) ? (double?)f.Members : null).ToList())).ToList();
        html.Append(Invariant, $"<h3>Members across the last {runs.Count} run{(runs.Count == 1 ? "" : "s")}</h3>");
        html.Append(SvgCharts.Lines("Segment members per run", runs, series));
        html.Append("<h3>Entered (up) and exited (down) per run</h3><div class=\"multiples\">");
        foreach (var n in names)
        {
            html.Append(SvgCharts.Changes(n, runs,
                report.History.Select(r => r.Segments.TryGetValue(n, out var f) ? (long?)f.Entered : null).ToList(),
                report.History.Select(r => r.Segments.TryGetValue(n, out var f) ? (long?)f.Exited : null).ToList()));
        }
        html.Append("</div>");
        html.Append("<details><summary>Figures per run</summary><table class=\"sortable\"><thead><tr><th>run</th><th>as of</th><th>status</th><th>segment</th><th>members</th><th>entered</th><th>exited</th></tr></thead><tbody>");
        foreach (var run in report.History)
        {
            foreach (var (segment, f) in run.Segments)
            {
                var name = $"history.{run.RunId}.{segment}";
                html.Append(Invariant, $"<tr><td>{E(run.RunId)}</td><td>{E(Time(run.AsOf))}</td><td>{E(run.Status)}</td><td>{E(segment)}</td>");
                html.Append(Invariant, $"<td>{Count(name + ".members", f.Members)}</td><td>{Count(name + ".entered", f.Entered)}</td><td>{Count(name + ".exited", f.Exited)}</td></tr>");
            }
        }
        html.Append("</tbody></table></details></section>\n");
    }

    private static void Identity(StringBuilder html, RunReport report)
    {
        html.Append("<section><h2>Identity</h2>");
        if (report.Identity is not { } identity)
        {
            html.Append(Invariant, $"<p class=\"note\">{Missing(report, "has no identity stage", "identity")}</p></section>\n");
            return;
        }
        html.Append(Invariant, $"<p class=\"figures\">{Count("identity.identifiers", identity.Identifiers)} identifiers, {Count("identity.links", identity.Links)} links, ");
        html.Append(Invariant, $"{Count("identity.profiles", identity.Profiles)} profiles ({Count("identity.profiles_merged", identity.ProfilesMerged)} merged, {Count("identity.profiles_split", identity.ProfilesSplit)} split); ");
        html.Append(Invariant, $"the largest holds {Count("identity.largest_profile", identity.LargestProfile)} identifiers. Mode: {E(identity.Mode)} ({E(identity.ModeReason)}).</p>");
        html.Append("<div class=\"pair\"><figure><figcaption>Profiles by identifiers per profile (cluster size)</figcaption>");
        html.Append(SvgCharts.VerticalBars("Profiles by cluster size", identity.ProfileSizes.Select(b =>
        {
            var label = b.Min == b.Max ? b.Min.ToString(Invariant) : $"{b.Min}–{b.Max}";
            return new BarDatum(label, b.Profiles, CountText(b.Profiles), SvgCharts.Neutral, $"identity.profile_sizes.{b.Min}-{b.Max}", Raw(b.Profiles));
        }).ToList(), "identifiers per profile"));
        html.Append("</figure><figure>");
        html.Append(Invariant, $"<figcaption>Refused merges by reason: {Count("identity.links_refused_total", identity.LinksRefusedTotal)} links not followed</figcaption>");
        if (identity.LinksRefused.Count == 0)
        {
            html.Append("<p class=\"note\">No link was refused.</p>");
        }
        else
        {
            html.Append(SvgCharts.HorizontalBars("Refused links by reason", identity.LinksRefused.Select(p =>
                new BarDatum(p.Key, p.Value, CountText(p.Value), SvgCharts.Bad, $"identity.links_refused.{p.Key}", Raw(p.Value))).ToList()));
            html.Append("<p class=\"caption\">limit:&lt;type&gt; — the merge would have given a profile more identifiers of that type than its limit; shared:&lt;type&gt; — a value shared by too many people (a household phone, a test address).</p>");
        }
        html.Append("</figure></div></section>\n");
    }

    private static void Scores(StringBuilder html, RunReport report)
    {
        html.Append("<section><h2>Scores</h2>");
        if (report.Scores.Count == 0)
        {
            html.Append(Invariant, $"<p class=\"note\">{Missing(report, "scored no model", "scores")}</p></section>\n");
            return;
        }
        foreach (var (model, m) in report.Scores)
        {
            var name = $"scores.{model}";
            html.Append(Invariant, $"<h3>{E(model)}</h3><p class=\"figures\">");
            html.Append(m.Version is { } version ? $"version {Figure(name + ".version", Raw(version), version.ToString(Invariant))}" : "no version scored");
            html.Append(Invariant, $" · {Count(name + ".scored", m.Scored)} profiles scored, {Count(name + ".outside_population", m.OutsidePopulation)} outside the population");
            AppendOptional(html, " · mean ", name + ".mean", m.Mean);
            AppendOptional(html, " · p50 ", name + ".p50", m.P50);
            AppendOptional(html, " · p90 ", name + ".p90", m.P90);
            AppendOptional(html, " · PSI ", name + ".psi", m.Psi);
            if (m.Psi is not null && m.PsiAgainstRun is { } against)
            {
                html.Append(Invariant, $" (against run {E(against)})");
            }
            html.Append("</p>");
            if (m.Error is { } error)
            {
                html.Append(Invariant, $"<p class=\"error\">{E(error)}</p>");
            }
            html.Append("<div class=\"pair\"><figure><figcaption>Score distribution (profiles per tenth of the score)</figcaption>");
            html.Append(SvgCharts.VerticalBars($"Score distribution of {model}", m.Histogram.Select((count, i) =>
                new BarDatum($"{i / 10.0:0.0}", count, CountText(count), SvgCharts.Neutral, $"{name}.histogram.{i}", Raw(count))).ToList(), "score"));
            html.Append("</figure><figure>");
            html.Append(Invariant, $"<figcaption>ROC curve of the version that scored{(m.ValidationRocAuc is { } auc ? $": validation ROC AUC {Figure(name + ".validation_roc_auc", Raw(auc), auc.ToString("F4", Invariant))}" : "")}</figcaption>");
            if (m.RocCurve.Count == 0)
            {
                html.Append(m.Version is null
                    ? $"<p class=\"note\">No version scored tonight, so there is no ROC curve to show{(m.Error is null ? "" : " (the error above says why)")}.</p>"
                    : "<p class=\"note\">The registry holds no ROC curve for this version (trained before curves were stored, or registered from outside).</p>");
            }
            else
            {
                html.Append(SvgCharts.Roc($"ROC curve of {model}", m.RocCurve.Select(p => (p.FalsePositiveRate, p.TruePositiveRate)).ToList(), model));
                html.Append(Invariant, $"<p class=\"caption\">{Count(name + ".roc_points", m.RocCurve.Count)} points; {E(m.ValidationMethod ?? "")}</p>");
            }
            html.Append("</figure></div>");
        }
        html.Append("</section>\n");
    }

    private static void Delivery(StringBuilder html, RunReport report)
    {
        html.Append("<section><h2>Delivery</h2>");
        if (report.Delivery is not { } delivery)
        {
            html.Append("<p class=\"note\">This run was not delivered: run <code>engine run --deliver</code>, or <code>engine deliver</code> and then <code>engine report</code>.</p></section>\n");
            return;
        }
        html.Append(Invariant, $"<p class=\"figures\">Signal (the run's finish) {E(Time(delivery.SignalAt))}; report written {E(Time(delivery.WrittenAt))}.</p>");
        var rows = new List<(string, IReadOnlyList<BarDatum>)>();
        var reasonColours = new Dictionary<string, string>(StringComparer.Ordinal);
        string Colour(string reason, string[] shades) => reasonColours.TryGetValue(reason, out var c) ? c
            : reasonColours[reason] = shades[reasonColours.Count(p => shades.Contains(p.Value)) % shades.Length];
        string[] suppressedShades = ["#edc948", "#f28e2b", "#ff9da7", "#b07aa1", "#9c755f"];
        string[] failedShades = ["#e15759", "#a52a2a", "#d37295"];
        foreach (var (destination, d) in delivery.Destinations)
        {
            var parts = new List<BarDatum>
            {
                new("added", d.Added, CountText(d.Added), SvgCharts.Good),
                new("removed", d.Removed, CountText(d.Removed), "#8cd17d"),
                new("unmatched", d.Unmatched, CountText(d.Unmatched), SvgCharts.Muted),
                new("held out", d.HeldOut, CountText(d.HeldOut), "#76b7b2"),
            };
            parts.AddRange(d.Suppressed.Select(p => new BarDatum($"suppressed: {p.Key}", p.Value, CountText(p.Value), Colour($"suppressed: {p.Key}", suppressedShades))));
            parts.AddRange(d.Failed.Select(p => new BarDatum($"failed: {p.Key}", p.Value, CountText(p.Value), Colour($"failed: {p.Key}", failedShades))));
            parts.Add(new BarDatum("open", d.Open, CountText(d.Open), "#79706e"));
            rows.Add((destination, parts));
        }
        html.Append("<figure><figcaption>Records per destination by outcome</figcaption>");
        html.Append(SvgCharts.StackedBars("Delivery outcomes per destination", rows));
        html.Append("</figure>");
        html.Append("<div class=\"scroll\"><table class=\"sortable\"><thead><tr><th>destination</th><th>processed</th><th>added</th><th>removed</th><th>unmatched</th><th>held out</th><th>suppressed</th><th>failed</th><th>retried</th><th>open</th><th>delivered</th><th>p50 s</th><th>p95 s</th><th>complete</th></tr></thead><tbody>");
        foreach (var (destination, d) in delivery.Destinations)
        {
            var name = $"delivery.destinations.{destination}";
            html.Append(Invariant, $"<tr><td>{E(destination)}</td><td>{Count(name + ".processed", d.Processed)}</td><td>{Count(name + ".added", d.Added)}</td><td>{Count(name + ".removed", d.Removed)}</td>");
            html.Append(Invariant, $"<td>{Count(name + ".unmatched", d.Unmatched)}</td><td>{Count(name + ".held_out", d.HeldOut)}</td><td>{Reasons(name + ".suppressed", d.Suppressed)}</td><td>{Reasons(name + ".failed", d.Failed)}</td>");
            html.Append(Invariant, $"<td>{Count(name + ".retried", d.Retried)}</td><td>{Count(name + ".open", d.Open)}</td>");
            html.Append(Invariant, $"<td>{(d.Processed == 0 ? "–" : Percent(name + ".delivered_rate", (double)(d.Added + d.Removed) / d.Processed))}</td>");
            html.Append(Invariant, $"<td>{(d.SecondsToDelivery is { } s ? Seconds(name + ".seconds_to_delivery.p50", s.P50, 3) : "–")}</td><td>{(d.SecondsToDelivery is { } t ? Seconds(name + ".seconds_to_delivery.p95", t.P95, 3) : "–")}</td>");
            html.Append(Invariant, $"<td>{(d.Completed ? "yes" : "<span class=\"warn\">no</span>")}</td></tr>");
        }
        html.Append("</tbody></table></div><p class=\"caption\">Delivered: added or removed at the destination, of the records processed. Held out: the destination's control group (its holdout), recorded and never sent. p50 / p95: seconds from the signal to the destination's acknowledgement, per delivered record.</p></section>\n");
    }

    private static void Holdouts(StringBuilder html, RunReport report)
    {
        if (report.Holdouts is not { } measurement)
        {
            // No destination holds out a control group: nothing to say (the delivery section covers the rest).
            return;
        }
        html.Append("<section><h2>Holdouts</h2>");
        html.Append(Invariant, $"<p class=\"figures\">Measured as of {E(Time(measurement.AsOf))} over the activation events of {measurement.RunsRead.Count} run{(measurement.RunsRead.Count == 1 ? "" : "s")}; outcome events mapped to profiles through this run's identity.</p>");
        if (measurement.Activations.Count == 0)
        {
            html.Append("<p class=\"note\">No entry with a holdout group has been delivered yet.</p></section>\n");
            return;
        }
        var intervals = new List<(string, double, double, double)>();
        foreach (var a in measurement.Activations)
        {
            foreach (var o in a.Outcomes)
            {
                if (o.Lift is { } lift)
                {
                    intervals.Add(($"{a.Segment} → {a.Destination}: {o.Outcome}", lift, o.LiftLow!.Value, o.LiftHigh!.Value));
                }
            }
        }
        if (intervals.Count > 0)
        {
            html.Append("<figure><figcaption>Lift per activation and outcome, with its 95 % confidence interval (green: the treatment converts more, red: less, grey: not distinguishable from no effect)</figcaption>");
            html.Append(SvgCharts.Intervals("Lift with 95 % confidence intervals", intervals));
            html.Append("</figure>");
        }
        html.Append("<div class=\"scroll\"><table class=\"sortable\"><thead><tr><th>activation</th><th>outcome</th><th>window d</th><th>treatment entries</th><th>converted</th><th>rate</th><th>control entries</th><th>converted</th><th>rate</th><th>lift pp</th><th>95 % interval pp</th><th>open</th></tr></thead><tbody>");
        foreach (var a in measurement.Activations)
        {
            foreach (var o in a.Outcomes)
            {
                var name = $"holdouts.{a.Destination}.{a.Segment}.{o.Outcome}";
                html.Append(Invariant, $"<tr><td>{E(a.Segment)} → {E(a.Destination)}</td><td>{E(o.Outcome)}</td><td>{Count(name + ".window_days", o.WindowDays)}</td>");
                html.Append(Invariant, $"<td>{Count(name + ".treatment.entries", o.Treatment.Entries)}</td><td>{Count(name + ".treatment.converted", o.Treatment.Converted)}</td><td>{(o.Treatment.Rate is { } tr ? Percent(name + ".treatment.rate", tr) : "–")}</td>");
                html.Append(Invariant, $"<td>{Count(name + ".control.entries", o.Control.Entries)}</td><td>{Count(name + ".control.converted", o.Control.Converted)}</td><td>{(o.Control.Rate is { } cr ? Percent(name + ".control.rate", cr) : "–")}</td>");
                html.Append(Invariant, $"<td>{(o.Lift is { } l ? Points(name + ".lift", l) : "–")}</td>");
                html.Append(Invariant, $"<td>{(o.LiftLow is { } low && o.LiftHigh is { } high ? $"{Points(name + ".lift_low", low)} to {Points(name + ".lift_high", high)}" : "–")}</td>");
                html.Append(Invariant, $"<td>{Count(name + ".open", o.Open)}</td></tr>");
            }
        }
        html.Append("</tbody></table></div>");
        html.Append("<p class=\"caption\">Entries: members who entered the segment (a segment's first delivery counts every member), in the treatment group (sent, or meant to be: suppressed and unmatched members count too, so that the groups stay comparable) or held out. Converted: an outcome event within the window after the entry's as-of time. Only entries whose window has closed count; open ones wait. Lift: treatment rate − control rate in percentage points, with Newcombe's hybrid score (Wilson) 95 % interval.</p>");
        html.Append("<h3>Time from signal to delivery</h3><div class=\"scroll\"><table class=\"sortable\"><thead><tr><th>activation</th><th>holdout %</th><th>treatment entries</th><th>control entries</th><th>delivered</th><th>p50 s from signal</th><th>p95 s from signal</th><th>p50 s from as-of</th><th>p95 s from as-of</th></tr></thead><tbody>");
        foreach (var a in measurement.Activations)
        {
            var name = $"holdouts.{a.Destination}.{a.Segment}";
            html.Append(Invariant, $"<tr><td>{E(a.Segment)} → {E(a.Destination)}</td><td>{(a.HoldoutPercent is { } p ? Figure(name + ".holdout_percent", Raw((double)p), p.ToString("0.##", Invariant)) : "–")}</td>");
            html.Append(Invariant, $"<td>{Count(name + ".treatment_entries", a.TreatmentEntries)}</td><td>{Count(name + ".control_entries", a.ControlEntries)}</td><td>{Count(name + ".delivered", a.Delivered)}</td>");
            html.Append(Invariant, $"<td>{(a.SecondsFromSignal is { } s ? Seconds(name + ".seconds_from_signal.p50", s.P50, 3) : "–")}</td><td>{(a.SecondsFromSignal is { } s95 ? Seconds(name + ".seconds_from_signal.p95", s95.P95, 3) : "–")}</td>");
            html.Append(Invariant, $"<td>{(a.SecondsFromAsOf is { } f ? Seconds(name + ".seconds_from_as_of.p50", f.P50, 3) : "–")}</td><td>{(a.SecondsFromAsOf is { } f95 ? Seconds(name + ".seconds_from_as_of.p95", f95.P95, 3) : "–")}</td></tr>");
        }
        html.Append("</tbody></table></div><p class=\"caption\">Over the delivered entries of every run measured. Signal: the run's finish; as-of: the run's data cut-off, when the member entered the segment.</p></section>\n");
    }

    private static void Stages(StringBuilder html, RunReport report)
    {
        html.Append("<section><h2>Stages</h2>");
        html.Append(SvgCharts.HorizontalBars("Seconds per stage", report.Stages.Select(s => new BarDatum(s.Stage, s.DurationSeconds, s.DurationSeconds.ToString("F2", Invariant),
            s.Status == RunStatus.Succeeded ? SvgCharts.Good : SvgCharts.Bad, $"stage.{s.Stage}.seconds", Raw(s.DurationSeconds))).ToList(), width: 760));
        html.Append("<table class=\"sortable\"><thead><tr><th>stage</th><th>status</th><th>started</th><th>seconds</th><th>rows in</th><th>rows out</th><th>peak MiB</th><th>message</th></tr></thead><tbody>");
        foreach (var stage in report.Stages)
        {
            var name = $"stage.{stage.Stage}";
            html.Append(Invariant, $"<tr><td>{E(stage.Stage)}</td><td><span class=\"badge {StatusClass(stage.Status)}\" data-figure=\"{E(name)}.status\" data-value=\"{E(stage.Status)}\">{E(stage.Status)}</span></td>");
            html.Append(Invariant, $"<td class=\"time\">{E(Time(stage.StartedAt))}</td><td>{Seconds(name + ".seconds", stage.DurationSeconds, 2)}</td>");
            html.Append(Invariant, $"<td>{Count(name + ".rows_in", stage.RowsIn)}</td><td>{Count(name + ".rows_out", stage.RowsOut)}</td>");
            // The process's peak resident set while the stage ran, in whole MiB (absent where /proc could not tell).
            html.Append(Invariant, $"<td>{(stage.PeakMemoryBytes is { } peak ? Count(name + ".peak_mib", (peak + (1L << 19)) >> 20) : "–")}</td><td>{E(stage.Message ?? "")}</td></tr>");
        }
        html.Append("</tbody></table></section>\n");
    }

    /// <summary>Why a section is empty: the run stopped before the stage, or the workspace has nothing for it.</summary>
    private static string Missing(RunReport report, string nothing, string stage)
        => report.Status != RunStatus.Succeeded && !report.Stages.Exists(s => s.Stage == stage)
            ? $"The run stopped before its {stage} stage."
            : $"This run {nothing}.";

    private static void Tile(StringBuilder html, string title, string value, string detail)
        => html.Append(Invariant, $"<div class=\"tile\"><div class=\"tile-title\">{E(title)}</div><div class=\"tile-value\">{value}</div><div class=\"tile-detail\">{detail}</div></div>");

    private static void AppendOptional(StringBuilder html, string prefix, string name, double? value)
    {
        if (value is { } v)
        {
            html.Append(prefix).Append(Figure(name, Raw(v), v.ToString("F4", Invariant)));
        }
    }

    private static string Reasons(string name, SortedDictionary<string, long> counts)
        => counts.Count == 0 ? "0" : string.Join("<br>", counts.Select(p => $"<span class=\"reason\">{E(p.Key)} {Count($"{name}.{p.Key}", p.Value)}</span>"));

    /// <summary>A figure as shown: its text inside an element naming it and holding its raw value.</summary>
    private static string Figure(string name, string raw, string text, string? unit = null)
        => $"<span class=\"fig\" data-figure=\"{E(name)}\" data-value=\"{E(raw)}\"{(unit is null ? "" : $" data-unit=\"{E(unit)}\"")}>{E(text)}</span>";

    private static string Count(string name, long value) => Figure(name, Raw(value), CountText(value));

    /// <summary>A difference of two rates in signed percentage points, one decimal (<c>data-unit="pp"</c>: the text is the value × 100).</summary>
    private static string Points(string name, double fraction) => Figure(name, Raw(fraction), SvgCharts.PointsText(fraction, "0.0"), "pp");

    private static string Percent(string name, double fraction) => Figure(name, Raw(fraction), (fraction * 100).ToString("F1", Invariant), "%") + " %";

    private static string Seconds(string name, double seconds, int decimals) => Figure(name, Raw(seconds), seconds.ToString("F" + decimals.ToString(Invariant), Invariant));

    private static string CountText(long value) => value.ToString("N0", Invariant);

    private static string Raw(long value) => value.ToString(Invariant);

    private static string Raw(double value) => value.ToString("R", Invariant);

    private static string Time(DateTimeOffset value) => value.ToUniversalTime().ToString("yyyy-MM-dd HH:mm:ss'Z'", Invariant);

    private static string StatusClass(string status) => status == RunStatus.Succeeded ? "ok" : "failed";

    private static string E(string text) => WebUtility.HtmlEncode(text);

    private const string Css = """
        :root { --ink: #1f2933; --muted: #616e7c; --line: #d9e2ec; --bg: #f5f7fa; --card: #ffffff; --ok: #2f8132; --bad: #c62828; }
        * { box-sizing: border-box; }
        body { margin: 0; background: var(--bg); color: var(--ink); font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
        main { max-width: 1040px; margin: 0 auto; padding: 24px 20px 40px; }
        h1 { font-size: 24px; margin: 0 0 4px; } h2 { font-size: 18px; margin: 0 0 12px; } h3 { font-size: 15px; margin: 18px 0 8px; }
        section, header { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 16px 20px; margin: 0 0 16px; }
        .meta { color: var(--muted); margin: 0; }
        .badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-weight: 600; font-size: 12px; color: #fff; }
        .badge.ok { background: var(--ok); } .badge.failed { background: var(--bad); }
        .error { color: var(--bad); font-weight: 600; } .warn { color: var(--bad); } .note { color: var(--muted); font-style: italic; }
        .tiles { display: grid; grid-template-columns: repeat(auto-fit, minmax(180px, 1fr)); gap: 12px; background: none; border: none; padding: 0; }
        .tile { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; }
        .tile-title { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
        .tile-value { font-size: 22px; font-weight: 650; margin: 4px 0; } .tile-detail { color: var(--muted); font-size: 12px; }
        table { border-collapse: collapse; width: 100%; margin: 8px 0; font-variant-numeric: tabular-nums; }
        th, td { text-align: right; padding: 4px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
        th:first-child, td:first-child, td:last-child, th:last-child { text-align: left; }
        th { color: var(--muted); font-weight: 600; cursor: pointer; user-select: none; white-space: nowrap; }
        .caption, figcaption { color: var(--muted); font-size: 12px; margin: 4px 0 8px; }
        figure { margin: 0; } .pair { display: grid; grid-template-columns: repeat(auto-fit, minmax(320px, 1fr)); gap: 16px; align-items: start; }
        .multiples { display: flex; flex-wrap: wrap; gap: 8px; }
        svg.chart { max-width: 100%; height: auto; display: block; }
        svg .tick { font-size: 11px; fill: var(--muted); } svg .strong { fill: var(--ink); font-weight: 600; }
        svg .value { font-size: 11px; fill: var(--ink); } svg .axis-title { font-size: 11px; fill: var(--muted); }
        svg .grid { stroke: var(--line); stroke-width: 1; } svg .axis { stroke: #9aa5b1; stroke-width: 1; }
        svg .diagonal { stroke: #9aa5b1; stroke-dasharray: 4 4; }
        details summary { cursor: pointer; color: var(--muted); margin-top: 8px; }
        footer { color: var(--muted); font-size: 12px; text-align: center; }
        .reason, .time { white-space: nowrap; }
        .scroll { overflow-x: auto; } .scroll th, .scroll td { padding: 4px 6px; }
        code { background: var(--bg); padding: 0 4px; border-radius: 3px; }
        """;

    /// <summary>Sortable tables: a click on a header sorts by that column (by the figures' raw values), again to reverse.</summary>
    private const string Script = """
        "use strict";
        for (const th of document.querySelectorAll("table.sortable th")) {
          th.addEventListener("click", () => {
            const table = th.closest("table");
            const column = Array.prototype.indexOf.call(th.parentElement.children, th);
            const key = row => {
              const cell = row.cells[column];
              const figure = cell && cell.querySelector("[data-value]");
              const text = figure ? figure.dataset.value : (cell ? cell.textContent : "");
              const number = Number(text);
              return text !== "" && !Number.isNaN(number) ? number : text;
            };
            const direction = th.dataset.sorted === "asc" ? -1 : 1;
            for (const other of th.parentElement.children) { delete other.dataset.sorted; }
            th.dataset.sorted = direction === 1 ? "asc" : "desc";
            const body = table.tBodies[0];
            const rows = Array.from(body.rows);
            rows.sort((a, b) => { const x = key(a), y = key(b); return (x > y ? 1 : x < y ? -1 : 0) * direction; });
            for (const row of rows) { body.appendChild(row); }
          });
        }
        """;
}
