using System.Globalization;
using System.Text;
using Engine.Storage;
using YamlDotNet.RepresentationModel;

namespace Engine.Workspaces;

/// <summary>Reads a source's <c>csv:</c> mapping into <see cref="CsvReadOptions"/>.</summary>
public static partial class WorkspaceLoader
{
    private static readonly string[] CsvKeys = ["delimiter", "header", "quote", "skip_lines", "null_values", "timestamp_formats", "date_formats", "encoding"];
    private static readonly string[] EncodingNames = ["utf-8", "utf-16", "utf-16be", "iso-8859-1", "latin1", "windows-1252", "us-ascii"];

    /// <summary>
    /// The options of a source's <c>csv:</c> mapping on top of <see cref="CsvReadOptions.Default"/>; null when the
    /// mapping is absent or has errors (which are added to <paramref name="errors"/>).
    /// </summary>
    private static CsvReadOptions? ReadCsvOptions(YamlMappingReader source, DataFormat? format, bool formatGiven, string file, List<WorkspaceError> errors)
    {
        if (source.KeyNode("csv") is not { } csvKey)
        {
            return null;
        }
        var before = errors.Count;
        var node = source.Mapping("csv");
        if (format == DataFormat.Parquet)
        {
            errors.Add(At(file, csvKey, formatGiven
                ? "'csv' options apply to CSV sources only, and this source's format is parquet"
                : "'csv' options apply to CSV sources only: add 'format: csv' (without it a source is parquet)"));
        }
        if (node is null)
        {
            return null;
        }
        var reader = new YamlMappingReader(node, file, errors);
        reader.CheckKeys(CsvKeys);
        var options = CsvReadOptions.Default;

        var beforeCharacters = errors.Count;
        var delimiterNode = reader.Scalar("delimiter");
        if (delimiterNode is not null)
        {
            if (string.Equals(delimiterNode.Value, "auto", StringComparison.OrdinalIgnoreCase))
            {
                options = options with { Delimiter = null };
            }
            else if (OneCharacter(delimiterNode, "delimiter", "one character, or auto to detect it from the first line", file, errors) is { } delimiter)
            {
                options = options with { Delimiter = delimiter };
            }
        }
        var quoteNode = reader.Scalar("quote");
        if (quoteNode is not null && OneCharacter(quoteNode, "quote", "one character", file, errors) is { } quote)
        {
            options = options with { Quote = quote };
        }
        if (errors.Count == beforeCharacters && options.Delimiter == options.Quote && (quoteNode ?? delimiterNode) is { } clash)
        {
            errors.Add(At(file, clash, $"the delimiter and the quote must differ (both are '{options.Quote}')"));
        }

        if (reader.Bool("header") is { } header)
        {
            options = options with { HasHeader = header };
        }
        if (reader.Scalar("skip_lines") is { } skipNode)
        {
            if (int.TryParse(skipNode.Value, NumberStyles.None, CultureInfo.InvariantCulture, out var skip))
            {
                options = options with { SkipLines = skip };
            }
            else
            {
                errors.Add(At(file, skipNode, $"'skip_lines' must be a whole number of at least 0, not '{skipNode.Value}'"));
            }
        }
        if (reader.Any("null_values") is { } nullsNode)
        {
            options = options with { NullValues = [.. StringList(nullsNode, file, errors).Select(n => n.Value ?? "")] };
        }
        if (reader.Any("timestamp_formats") is { } timestampsNode)
        {
            options = options with { TimestampFormats = Formats(timestampsNode, "timestamp", file, errors) };
        }
        if (reader.Any("date_formats") is { } datesNode)
        {
            options = options with { DateFormats = Formats(datesNode, "date", file, errors) };
        }
        if (reader.Scalar("encoding") is { } encodingNode)
        {
            if (ParseEncoding(encodingNode.Value ?? "") is { } encoding)
            {
                options = options with { Encoding = encoding };
            }
            else
            {
                var typed = encodingNode.Value ?? "";
                var hint = Suggestions.Nearest(typed, EncodingNames);
                errors.Add(At(file, encodingNode, $"unknown encoding '{typed}'{(hint is null ? $" (such as {string.Join(", ", EncodingNames)})" : $" (did you mean '{hint}'?)")}"));
            }
        }
        return errors.Count > before ? null : options;
    }

    private static char? OneCharacter(YamlScalarNode node, string key, string expected, string file, List<WorkspaceError> errors)
    {
        var value = node.Value ?? "";
        if (value.Length == 1 && value[0] is not ('\r' or '\n'))
        {
            return value[0];
        }
        var hint = value switch
        {
            "" => ": write it in quotes, such as \"|\"",
            "\\t" => ": for a tab write \"\\t\" in double quotes",
            _ when value.Length == 1 => ": a line break cannot be one",
            _ => "",
        };
        errors.Add(At(file, node, $"'{key}' must be {expected}, not '{CsvDataFile.Show(value)}'{hint}"));
        return null;
    }

    /// <summary>.NET custom date and time format strings, each checked (see <see cref="IsFormat"/>).</summary>
    private static string[] Formats(YamlNode node, string kind, string file, List<WorkspaceError> errors)
    {
        var formats = new List<string>();
        foreach (var formatNode in StringList(node, file, errors))
        {
            var format = formatNode.Value ?? "";
            if (IsFormat(format, kind))
            {
                formats.Add(format);
            }
            else
            {
                var example = kind == "date" ? "dd/MM/yyyy" : "dd/MM/yyyy HH:mm";
                errors.Add(At(file, formatNode, $"'{format}' is not a {kind} format (.NET custom format strings, such as {example})"));
            }
        }
        return [.. formats];
    }

    // .NET has no validator for format strings; formatting a sample value rejects the malformed ones (an unclosed
    // quote, an unknown one-letter format, a time specifier in a date format).
    private static bool IsFormat(string format, string kind)
    {
        if (format.Length == 0)
        {
            return false;
        }
        try
        {
            _ = kind == "date"
                ? DateOnly.FromDayNumber(0).ToString(format, CultureInfo.InvariantCulture)
                : DateTimeOffset.UnixEpoch.ToString(format, CultureInfo.InvariantCulture);
            return true;
        }
        catch (FormatException)
        {
            return false;
        }
    }

    /// <summary>An encoding by name, strict (an invalid byte is an error, not a replacement character); null when unknown.</summary>
    private static Encoding? ParseEncoding(string name)
    {
        var trimmed = name.Trim();
        if (trimmed.Equals("utf-8", StringComparison.OrdinalIgnoreCase) || trimmed.Equals("utf8", StringComparison.OrdinalIgnoreCase))
        {
            return CsvReadOptions.Default.Encoding;
        }
        if (trimmed.Length == 0)
        {
            return null;
        }
        try
        {
            return Encoding.GetEncoding(trimmed, EncoderFallback.ExceptionFallback, DecoderFallback.ExceptionFallback);
        }
        catch (ArgumentException)
        {
            // Not built in: the Windows and ISO code pages come from their provider (used directly, not registered).
            return CodePagesEncodingProvider.Instance.GetEncoding(trimmed, EncoderFallback.ExceptionFallback, DecoderFallback.ExceptionFallback);
        }
    }
}
