using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Engine.Workspaces;

/// <summary>
/// Maps offsets in a YAML scalar's value back to the file's line and column, so that an error found inside a value
/// (a segment condition) points at the spot in the file, whether the value is written on one line, quoted, or as a
/// <c>|</c> or <c>&gt;</c> block over several.
/// </summary>
public sealed class TextPositions
{
    private readonly (int Offset, int Line, int Column)[] _fragments;

    private TextPositions((int Offset, int Line, int Column)[] fragments) => _fragments = fragments;

    /// <summary>A value that starts at <paramref name="line"/>:<paramref name="column"/> and runs on from there.</summary>
    public static TextPositions At(int line, int column) => new([(0, line, column)]);

    /// <summary>The 1-based line and column of <paramref name="offset"/> in the value.</summary>
    public (int Line, int Column) Locate(int offset)
    {
        var fragment = _fragments[0];
        foreach (var candidate in _fragments)
        {
            if (candidate.Offset > offset)
            {
                break;
            }
            fragment = candidate;
        }
        return (fragment.Line, fragment.Column + Math.Max(0, offset - fragment.Offset));
    }

    /// <summary>
    /// Finds each line of the scalar's source in its value: YAML folds and strips indentation, so the value's
    /// lines are the file's lines without their indentation, in order.
    /// </summary>
    internal static TextPositions ForScalar(YamlScalarNode node, string fileText)
    {
        var value = node.Value ?? "";
        var start = (int)node.Start.Line;
        var end = (int)node.End.Line;
        var lines = fileText.Split('\n');
        var quoted = node.Style is ScalarStyle.SingleQuoted or ScalarStyle.DoubleQuoted ? 1 : 0;
        if (node.Style is not (ScalarStyle.Literal or ScalarStyle.Folded) && start == end)
        {
            return At(start, (int)node.Start.Column + quoted);
        }
        var fragments = new List<(int, int, int)>();
        var first = node.Style is ScalarStyle.Literal or ScalarStyle.Folded ? start + 1 : start;
        var at = 0;
        for (var line = first; line <= Math.Min(end, lines.Length); line++)
        {
            var raw = lines[line - 1].TrimEnd('\r');
            var column = line == start ? (int)node.Start.Column - 1 + quoted : 0;
            while (column < raw.Length && raw[column] is ' ' or '\t')
            {
                column++;
            }
            var content = raw[Math.Min(column, raw.Length)..].TrimEnd();
            if (content.Length == 0)
            {
                continue;
            }
            var found = value.IndexOf(content, at, StringComparison.Ordinal);
            if (found < 0)
            {
                continue;
            }
            fragments.Add((found, line, column + 1));
            at = found + content.Length;
        }
        return fragments.Count == 0 ? At(start, (int)node.Start.Column + quoted) : new TextPositions([.. fragments]);
    }
}
