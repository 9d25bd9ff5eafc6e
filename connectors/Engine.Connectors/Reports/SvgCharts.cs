using System.Globalization;
using System.Net;
using System.Text;

namespace Engine.Connectors.Reports;

/// <summary>One bar (or one part of a stacked bar) of a chart.</summary>
/// <param name="Label">The category, under or beside the bar.</param>
/// <param name="Value">The bar's length.</param>
/// <param name="Display">The value as the report prints it.</param>
/// <param name="Colour">A CSS colour.</param>
/// <param name="Figure">The figure's name (<c>data-figure</c>) on the bar's value label; null for no label.</param>
/// <param name="Raw">The figure's raw value (<c>data-value</c>).</param>
internal sealed record BarDatum(string Label, double Value, string Display, string Colour, string? Figure = null, string? Raw = null);

/// <summary>One line of a line chart; a null value leaves a gap (a run without the segment).</summary>
internal sealed record Series(string Name, string Colour, IReadOnlyList<double?> Values);

/// <summary>
/// The run report's charts as inline SVG, drawn here so that the report needs no script library and no network.
/// Every value label that shows a figure carries <c>data-figure</c> and <c>data-value</c> (see <see cref="RunReportHtml"/>);
/// every mark has a <c>&lt;title&gt;</c>, which browsers show on hover.
/// </summary>
internal static class SvgCharts
{
    /// <summary>Tableau 10: distinguishable, and readable by most colour-blind readers.</summary>
    public static readonly string[] Palette = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"];

    public const string Good = "#59a14f";
    public const string Bad = "#e15759";
    public const string Neutral = "#4e79a7";
    public const string Muted = "#bab0ac";

    private static readonly CultureInfo Invariant = CultureInfo.InvariantCulture;

    /// <summary>Vertical bars with their values above them.</summary>
    public static string VerticalBars(string title, IReadOnlyList<BarDatum> bars, string? xTitle = null, int width = 520, int height = 250)
    {
        const int left = 56, right = 12, top = 22, bottom = 46;
        var svg = Open(title, width, height);
        var plotWidth = width - left - right;
        var plotHeight = height - top - bottom;
        var max = NiceMax(bars.Count == 0 ? 0 : bars.Max(b => b.Value));
        YAxis(svg, max, left, top, plotWidth, plotHeight);
        var slot = bars.Count == 0 ? plotWidth : (double)plotWidth / bars.Count;
        var barWidth = Math.Max(2, slot * 0.72);
        for (var i = 0; i < bars.Count; i++)
        {
            var bar = bars[i];
            var h = max <= 0 ? 0 : bar.Value / max * plotHeight;
            var x = left + i * slot + (slot - barWidth) / 2;
            var y = top + plotHeight - h;
            svg.Append(CultureInfo.InvariantCulture, $"<rect x=\"{N(x)}\" y=\"{N(y)}\" width=\"{N(barWidth)}\" height=\"{N(h)}\" fill=\"{bar.Colour}\"><title>{E(bar.Label)}: {E(bar.Display)}</title></rect>");
            Label(svg, left + i * slot + slot / 2, y - 5, "middle", bar.Display, bar.Figure, bar.Raw, "value");
            svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{N(left + i * slot + slot / 2)}\" y=\"{N(top + plotHeight + 16)}\" text-anchor=\"middle\" class=\"tick\">{E(bar.Label)}</text>");
        }
        if (xTitle is not null)
        {
            svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{N(left + plotWidth / 2.0)}\" y=\"{height - 6}\" text-anchor=\"middle\" class=\"axis-title\">{E(xTitle)}</text>");
        }
        return Close(svg);
    }

    /// <summary>Horizontal bars, one row per category, the value after the bar.</summary>
    public static string HorizontalBars(string title, IReadOnlyList<BarDatum> bars, int width = 520, int labelWidth = 150)
    {
        const int rowHeight = 26, top = 8, valueWidth = 84;
        var height = top * 2 + Math.Max(1, bars.Count) * rowHeight;
        var svg = Open(title, width, height);
        var plotWidth = width - labelWidth - valueWidth;
        var max = bars.Count == 0 ? 0 : bars.Max(b => b.Value);
        for (var i = 0; i < bars.Count; i++)
        {
            var bar = bars[i];
            var y = top + i * rowHeight;
            var w = max <= 0 ? 0 : bar.Value / max * plotWidth;
            svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{labelWidth - 8}\" y=\"{y + 17}\" text-anchor=\"end\" class=\"tick\">{E(Shorten(bar.Label, 24))}<title>{E(bar.Label)}</title></text>");
            svg.Append(CultureInfo.InvariantCulture, $"<rect x=\"{labelWidth}\" y=\"{y + 4}\" width=\"{N(Math.Max(w, bar.Value > 0 ? 1 : 0))}\" height=\"{rowHeight - 8}\" fill=\"{bar.Colour}\"><title>{E(bar.Label)}: {E(bar.Display)}</title></rect>");
            Label(svg, labelWidth + w + 6, y + 17, "start", bar.Display, bar.Figure, bar.Raw, "value");
        }
        return Close(svg);
    }

    /// <summary>One stacked horizontal bar per row (e.g. a destination's records by outcome), with a legend of the parts.</summary>
    public static string StackedBars(string title, IReadOnlyList<(string Label, IReadOnlyList<BarDatum> Parts)> rows, int width = 980, int labelWidth = 170)
    {
        const int rowHeight = 30, top = 8;
        var legend = new List<(string Label, string Colour)>();
        foreach (var (_, parts) in rows)
        {
            foreach (var part in parts)
            {
                if (!legend.Exists(l => l.Label == part.Label))
                {
                    legend.Add((part.Label, part.Colour));
                }
            }
        }
        const int legendColumns = 4;
        var legendRows = (legend.Count + legendColumns - 1) / legendColumns;
        var height = top + Math.Max(1, rows.Count) * rowHeight + 10 + legendRows * 20;
        var svg = Open(title, width, height);
        var plotWidth = width - labelWidth - 20;
        var max = rows.Count == 0 ? 0 : rows.Max(r => r.Parts.Sum(p => p.Value));
        for (var i = 0; i < rows.Count; i++)
        {
            var (label, parts) = rows[i];
            var y = top + i * rowHeight;
            svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{labelWidth - 8}\" y=\"{y + 19}\" text-anchor=\"end\" class=\"tick\">{E(Shorten(label, 26))}<title>{E(label)}</title></text>");
            var x = (double)labelWidth;
            foreach (var part in parts)
            {
                var w = max <= 0 ? 0 : part.Value / max * plotWidth;
                svg.Append(CultureInfo.InvariantCulture, $"<rect x=\"{N(x)}\" y=\"{y + 5}\" width=\"{N(w)}\" height=\"{rowHeight - 10}\" fill=\"{part.Colour}\"><title>{E(label)}: {E(part.Label)} {E(part.Display)}</title></rect>");
                x += w;
            }
        }
        var legendTop = top + Math.Max(1, rows.Count) * rowHeight + 10;
        for (var i = 0; i < legend.Count; i++)
        {
            var lx = labelWidth + i % legendColumns * (plotWidth / legendColumns);
            var ly = legendTop + i / legendColumns * 20;
            svg.Append(CultureInfo.InvariantCulture, $"<rect x=\"{lx}\" y=\"{ly}\" width=\"12\" height=\"12\" fill=\"{legend[i].Colour}\"/><text x=\"{lx + 17}\" y=\"{ly + 11}\" class=\"tick\">{E(legend[i].Label)}</text>");
        }
        return Close(svg);
    }

    /// <summary>Lines over categories (runs), with a dot per value and a legend.</summary>
    public static string Lines(string title, IReadOnlyList<string> categories, IReadOnlyList<Series> series, int width = 980, int height = 300)
    {
        const int left = 64, right = 170, top = 16, bottom = 52;
        var svg = Open(title, width, height);
        var plotWidth = width - left - right;
        var plotHeight = height - top - bottom;
        var max = NiceMax(series.SelectMany(s => s.Values).Where(v => v.HasValue).Select(v => v!.Value).DefaultIfEmpty(0).Max());
        YAxis(svg, max, left, top, plotWidth, plotHeight);
        double X(int i) => categories.Count <= 1 ? left + plotWidth / 2.0 : left + (double)i * plotWidth / (categories.Count - 1);
        double Y(double v) => top + plotHeight - (max <= 0 ? 0 : v / max * plotHeight);
        // Label every category when they fit, else every other one.
        var step = categories.Count > 8 ? 2 : 1;
        for (var i = 0; i < categories.Count; i++)
        {
            if (i % step == 0 || i == categories.Count - 1)
            {
                svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{N(X(i))}\" y=\"{top + plotHeight + 16}\" text-anchor=\"middle\" class=\"tick\">{E(Shorten(categories[i], 18))}<title>{E(categories[i])}</title></text>");
            }
        }
        for (var s = 0; s < series.Count; s++)
        {
            var line = series[s];
            var path = new StringBuilder();
            var pen = false;
            for (var i = 0; i < line.Values.Count; i++)
            {
                if (line.Values[i] is not { } v)
                {
                    pen = false;
                    continue;
                }
                path.Append(pen ? " L" : " M").Append(N(X(i))).Append(',').Append(N(Y(v)));
                pen = true;
            }
            svg.Append(CultureInfo.InvariantCulture, $"<path d=\"{path.ToString().Trim()}\" fill=\"none\" stroke=\"{line.Colour}\" stroke-width=\"2\"/>");
            for (var i = 0; i < line.Values.Count; i++)
            {
                if (line.Values[i] is { } v)
                {
                    svg.Append(CultureInfo.InvariantCulture, $"<circle cx=\"{N(X(i))}\" cy=\"{N(Y(v))}\" r=\"3.5\" fill=\"{line.Colour}\"><title>{E(line.Name)}, {E(categories[i])}: {v.ToString("N0", Invariant)}</title></circle>");
                }
            }
            var ly = top + s * 18;
            svg.Append(CultureInfo.InvariantCulture, $"<rect x=\"{width - right + 14}\" y=\"{ly}\" width=\"12\" height=\"12\" fill=\"{line.Colour}\"/><text x=\"{width - right + 31}\" y=\"{ly + 11}\" class=\"tick\">{E(Shorten(line.Name, 20))}<title>{E(line.Name)}</title></text>");
        }
        return Close(svg);
    }

    /// <summary>Entries above the axis and exits below it, per category (run): one small chart per segment.</summary>
    public static string Changes(string title, IReadOnlyList<string> categories, IReadOnlyList<long?> entered, IReadOnlyList<long?> exited, int width = 300, int height = 130)
    {
        const int left = 8, right = 8, top = 18, bottom = 8;
        var svg = Open(title, width, height);
        var plotWidth = width - left - right;
        var half = (height - top - bottom) / 2.0;
        var axis = top + half;
        long max = 0;
        for (var i = 0; i < categories.Count; i++)
        {
            max = Math.Max(max, Math.Max(entered[i] ?? 0, exited[i] ?? 0));
        }
        svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{left}\" y=\"12\" class=\"tick strong\">{E(Shorten(title, 40))}</text>");
        svg.Append(CultureInfo.InvariantCulture, $"<line x1=\"{left}\" x2=\"{width - right}\" y1=\"{N(axis)}\" y2=\"{N(axis)}\" class=\"axis\"/>");
        var slot = categories.Count == 0 ? plotWidth : (double)plotWidth / categories.Count;
        var barWidth = Math.Max(2, slot * 0.7);
        for (var i = 0; i < categories.Count; i++)
        {
            var x = left + i * slot + (slot - barWidth) / 2;
            if (entered[i] is { } up)
            {
                var h = max == 0 ? 0 : up * half / max;
                svg.Append(CultureInfo.InvariantCulture, $"<rect x=\"{N(x)}\" y=\"{N(axis - h)}\" width=\"{N(barWidth)}\" height=\"{N(h)}\" fill=\"{Good}\"><title>{E(categories[i])}: {up.ToString("N0", Invariant)} entered</title></rect>");
            }
            if (exited[i] is { } down)
            {
                var h = max == 0 ? 0 : down * half / max;
                svg.Append(CultureInfo.InvariantCulture, $"<rect x=\"{N(x)}\" y=\"{N(axis)}\" width=\"{N(barWidth)}\" height=\"{N(h)}\" fill=\"{Bad}\"><title>{E(categories[i])}: {down.ToString("N0", Invariant)} exited</title></rect>");
            }
        }
        return Close(svg);
    }

    /// <summary>A ROC curve over the unit square, with the diagonal of a model that guesses.</summary>
    public static string Roc(string title, IReadOnlyList<(double Fpr, double Tpr)> points, string modelName, int size = 300)
    {
        const int margin = 44;
        var svg = Open(title, size, size);
        var plot = size - margin - 12;
        double X(double fpr) => margin + fpr * plot;
        double Y(double tpr) => 12 + plot - tpr * plot;
        for (var t = 0; t <= 4; t++)
        {
            var v = t / 4.0;
            svg.Append(CultureInfo.InvariantCulture, $"<line x1=\"{N(X(0))}\" x2=\"{N(X(1))}\" y1=\"{N(Y(v))}\" y2=\"{N(Y(v))}\" class=\"grid\"/>");
            svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{N(X(0) - 6)}\" y=\"{N(Y(v) + 4)}\" text-anchor=\"end\" class=\"tick\">{v.ToString("0.##", Invariant)}</text>");
            svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{N(X(v))}\" y=\"{N(Y(0) + 15)}\" text-anchor=\"middle\" class=\"tick\">{v.ToString("0.##", Invariant)}</text>");
        }
        svg.Append(CultureInfo.InvariantCulture, $"<line x1=\"{N(X(0))}\" y1=\"{N(Y(0))}\" x2=\"{N(X(1))}\" y2=\"{N(Y(1))}\" class=\"diagonal\"/>");
        var coordinates = string.Join(' ', points.Select(p => $"{N(X(p.Fpr))},{N(Y(p.Tpr))}"));
        svg.Append(CultureInfo.InvariantCulture, $"<polyline class=\"roc-curve\" data-model=\"{E(modelName)}\" data-points=\"{points.Count}\" points=\"{coordinates}\" fill=\"none\" stroke=\"{Neutral}\" stroke-width=\"2\"><title>ROC curve of {E(modelName)}</title></polyline>");
        svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{N(X(0.5))}\" y=\"{size - 4}\" text-anchor=\"middle\" class=\"axis-title\">false positive rate</text>");
        svg.Append(CultureInfo.InvariantCulture, $"<text transform=\"translate(12,{N(Y(0.5))}) rotate(-90)\" text-anchor=\"middle\" class=\"axis-title\">true positive rate</text>");
        return Close(svg);
    }

    /// <summary>
    /// A forest plot: per row, a point at the estimate and a line across its confidence interval, around a dashed
    /// line at zero (no effect). Intervals wholly above zero are drawn in green, wholly below in red, others grey.
    /// Values are fractions, labelled in percentage points.
    /// </summary>
    public static string Intervals(string title, IReadOnlyList<(string Label, double Estimate, double Low, double High)> rows, int width = 760, int labelWidth = 260)
    {
        const int rowHeight = 28, top = 10, bottom = 34, right = 24;
        var height = top + bottom + Math.Max(1, rows.Count) * rowHeight;
        var svg = Open(title, width, height);
        var plot = width - labelWidth - right;
        var extent = NiceMax(rows.Count == 0 ? 0 : rows.Max(r => Math.Max(Math.Abs(r.Low), Math.Abs(r.High))));
        double X(double v) => labelWidth + (v + extent) / (2 * extent) * plot;
        var bottomY = top + Math.Max(1, rows.Count) * rowHeight;
        for (var t = -2; t <= 2; t++)
        {
            var v = extent * t / 2;
            svg.Append(CultureInfo.InvariantCulture, $"<line x1=\"{N(X(v))}\" x2=\"{N(X(v))}\" y1=\"{top}\" y2=\"{bottomY}\" class=\"{(t == 0 ? "diagonal" : "grid")}\"/>");
            svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{N(X(v))}\" y=\"{bottomY + 15}\" text-anchor=\"middle\" class=\"tick\">{PointsText(v, "0.#")}</text>");
        }
        for (var i = 0; i < rows.Count; i++)
        {
            var (label, estimate, low, high) = rows[i];
            var y = top + i * rowHeight + rowHeight / 2.0;
            var colour = low > 0 ? Good : high < 0 ? Bad : "#79706e";
            var text = $"{label}: {PointsText(estimate, "0.0")} pp [{PointsText(low, "0.0")}, {PointsText(high, "0.0")}]";
            svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{labelWidth - 8}\" y=\"{N(y + 4)}\" text-anchor=\"end\" class=\"tick\">{E(Shorten(label, 40))}<title>{E(label)}</title></text>");
            svg.Append(CultureInfo.InvariantCulture, $"<line class=\"interval\" x1=\"{N(X(low))}\" x2=\"{N(X(high))}\" y1=\"{N(y)}\" y2=\"{N(y)}\" stroke=\"{colour}\" stroke-width=\"3\"><title>{E(text)}</title></line>");
            svg.Append(CultureInfo.InvariantCulture, $"<circle cx=\"{N(X(estimate))}\" cy=\"{N(y)}\" r=\"5\" fill=\"{colour}\"><title>{E(text)}</title></circle>");
        }
        svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{N(labelWidth + plot / 2.0)}\" y=\"{height - 4}\" text-anchor=\"middle\" class=\"axis-title\">lift: treatment − control conversion, percentage points (95 % interval)</text>");
        return Close(svg);
    }

    /// <summary>A fraction as signed percentage points (+1.5, −0.3, 0).</summary>
    internal static string PointsText(double fraction, string format)
        => (fraction * 100).ToString($"+{format};−{format};{format}", Invariant);

    private static StringBuilder Open(string title, int width, int height)
    {
        var svg = new StringBuilder();
        svg.Append(CultureInfo.InvariantCulture, $"<svg class=\"chart\" viewBox=\"0 0 {width} {height}\" width=\"{width}\" height=\"{height}\" role=\"img\" aria-label=\"{E(title)}\" xmlns=\"http://www.w3.org/2000/svg\">");
        return svg;
    }

    private static string Close(StringBuilder svg) => svg.Append("</svg>").ToString();

    private static void YAxis(StringBuilder svg, double max, int left, int top, int plotWidth, int plotHeight)
    {
        const int ticks = 4;
        for (var t = 0; t <= ticks; t++)
        {
            var v = max * t / ticks;
            var y = top + plotHeight - (double)t / ticks * plotHeight;
            svg.Append(CultureInfo.InvariantCulture, $"<line x1=\"{left}\" x2=\"{left + plotWidth}\" y1=\"{N(y)}\" y2=\"{N(y)}\" class=\"{(t == 0 ? "axis" : "grid")}\"/>");
            svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{left - 6}\" y=\"{N(y + 4)}\" text-anchor=\"end\" class=\"tick\">{Compact(v)}</text>");
        }
    }

    private static void Label(StringBuilder svg, double x, double y, string anchor, string display, string? figure, string? raw, string cssClass)
    {
        var data = figure is null ? "" : $" data-figure=\"{E(figure)}\" data-value=\"{E(raw ?? "")}\"";
        svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{N(x)}\" y=\"{N(y)}\" text-anchor=\"{anchor}\" class=\"{cssClass}\"{data}>{E(display)}</text>");
    }

    /// <summary>The smallest 1, 2 or 5 × 10^k at or above <paramref name="value"/>: axis ends that read well.</summary>
    internal static double NiceMax(double value)
    {
        if (value <= 0 || double.IsNaN(value))
        {
            return 1;
        }
        var magnitude = Math.Pow(10, Math.Floor(Math.Log10(value)));
        foreach (var step in new[] { 1.0, 2.0, 2.5, 5.0, 10.0 })
        {
            if (step * magnitude >= value)
            {
                return step * magnitude;
            }
        }
        return 10 * magnitude;
    }

    /// <summary>Axis tick text: 1,500 / 25k / 1.2M.</summary>
    private static string Compact(double v) => v switch
    {
        >= 1e6 => (v / 1e6).ToString("0.##", Invariant) + "M",
        >= 1e4 => (v / 1e3).ToString("0.#", Invariant) + "k",
        _ => v.ToString(v == Math.Floor(v) ? "N0" : "0.##", Invariant),
    };

    private static string Shorten(string text, int length) => text.Length <= length ? text : text[..(length - 1)] + "…";

    private static string N(double v) => v.ToString("0.##", Invariant);

    private static string E(string text) => WebUtility.HtmlEncode(text);
}
