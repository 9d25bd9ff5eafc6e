using Engine.Storage;
using Engine.Workspaces;

namespace Engine.Ingest;

/// <summary>
/// One Parquet file's ingest figures from its footer: rows from the row groups, NULLs per declared column from the
/// column chunks' null counts, the timestamp column's range from its chunks' min/max. The figures equal a scan's:
/// a chunk's null count is exactly the NULLs Arrow reads from it, and the time unit is converted as the scan converts
/// each value. Declared columns taken from the path (hive partitions) count as a scan counts them: NULL on every row
/// under Hive's NULL marker, never otherwise.
/// </summary>
internal static class FooterFigures
{
    /// <summary>
    /// The figures of <paramref name="file"/>, or null when its footer cannot give them (a chunk without a null count,
    /// a timestamp chunk with values but no usable min/max, or a footer that disagrees with the data): the caller
    /// then scans it. Throws the scan's <see cref="DataException"/> for a NULL in a required column.
    /// </summary>
    public static FileStats? Read(ParquetDataFile file, DataFile data, IReadOnlyList<ColumnSpec> columns, int timestampIndex, SourceDefinition source)
    {
        // The same checks a scan makes when it opens the file: partition values, then declared columns and types.
        var partitions = PartitionColumns.For(data, columns, file.Location);
        var leaves = file.ResolveColumns(partitions.Stored);
        var positions = partitions.StoredPositions;
        var timestampLeaf = -1;
        object? timestampFromPath = null;
        if (timestampIndex >= 0)
        {
            for (var i = 0; i < positions.Count; i++)
            {
                if (positions[i] == timestampIndex)
                {
                    timestampLeaf = leaves[i];
                }
            }
            foreach (var (position, _, value) in partitions.FromPath)
            {
                if (position == timestampIndex)
                {
                    timestampFromPath = value;
                }
            }
        }

        var stats = new FileStats(file.Location, data.Size, columns.Count) { FromFooter = true };
        var firstRow = 0L;
        (int RowGroup, long FirstRow)? requiredNull = null;
        for (var g = 0; g < file.RowGroupCount; g++)
        {
            var rows = file.RowGroupRows(g);
            if (rows == 0)
            {
                // Nothing to count, and writers leave an empty group's statistics unset (Arrow does).
                continue;
            }
            for (var i = 0; i < leaves.Length; i++)
            {
                if (file.FooterNullCount(g, leaves[i]) is not { } nulls)
                {
                    return null;
                }
                stats.NullCounts[positions[i]] += nulls;
                if (nulls > 0 && columns[positions[i]].Required)
                {
                    requiredNull ??= (g, firstRow);
                }
                if (leaves[i] == timestampLeaf && nulls < rows)
                {
                    // Values present: the footer must bound them, or the file is scanned.
                    if (!file.TryGetFooterTimestampRange(g, timestampLeaf, out var min, out var max))
                    {
                        return null;
                    }
                    stats.TrackTimeRange(min, max);
                }
            }
            foreach (var (position, _, value) in partitions.FromPath)
            {
                if (value is null)
                {
                    stats.NullCounts[position] += rows;
                }
            }
            if (timestampFromPath is DateTimeOffset at && rows > 0)
            {
                var micros = (at.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks) / TimeSpan.TicksPerMicrosecond;
                stats.TrackTimeRange(micros, micros);
            }
            stats.AddRows(rows);
            firstRow += rows;
        }
        if (requiredNull is { } found)
        {
            // Named from the data: read only that row group's required columns that hold NULLs.
            if (FirstRequiredNull(file, found.RowGroup, found.FirstRow, leaves, positions, columns, source) is { } error)
            {
                throw error;
            }
            // The footer counts a NULL the data does not hold: its figures are wrong, so the data decides (a scan).
            return null;
        }
        return stats;
    }

    /// <summary>
    /// The error naming the first NULL of a required column in <paramref name="rowGroup"/> (the first such row, the
    /// first such column of the batch that holds it, as a scan reports it), or null when the data has none after all.
    /// </summary>
    private static DataException? FirstRequiredNull(ParquetDataFile file, int rowGroup, long firstRow, int[] leaves, IReadOnlyList<int> positions,
        IReadOnlyList<ColumnSpec> columns, SourceDefinition source)
    {
        var read = new List<int>();
        var names = new List<string>();
        for (var i = 0; i < leaves.Length; i++)
        {
            if (columns[positions[i]].Required && file.FooterNullCount(rowGroup, leaves[i]) > 0)
            {
                read.Add(leaves[i]);
                names.Add(columns[positions[i]].Name);
            }
        }
        var offset = firstRow;
        foreach (var batch in file.ReadRowGroup(rowGroup, [.. read]))
        {
            using (batch)
            {
                for (var c = 0; c < names.Count; c++)
                {
                    var array = batch.Column(c);
                    if (array.NullCount > 0)
                    {
                        return FileStats.RequiredNull(file.Location, offset + FileStats.FirstNull(array), names[c], source.Name);
                    }
                }
                offset += batch.Length;
            }
        }
        return null;
    }
}
