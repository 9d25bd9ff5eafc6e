using Apache.Arrow;
using Apache.Arrow.Types;

namespace Engine.Connectors.Matching;

/// <summary>Reading single values out of the Arrow arrays the engine writes (strings plain or dictionary-encoded).</summary>
internal static class ArrowValues
{
    public static string? String(IArrowArray array, int row) => array switch
    {
        StringArray s => s.IsNull(row) ? null : s.GetString(row),
        DictionaryArray { Dictionary: StringArray entries } d => d.IsNull(row) ? null : entries.GetString(Index(d.Indices, row)),
        _ => throw new InvalidDataException($"expected a string column, found {array.Data.DataType.Name}"),
    };

    public static long? Long(IArrowArray array, int row) => array.IsNull(row) ? null : array switch
    {
        Int64Array a => a.GetValue(row),
        Int32Array a => a.GetValue(row),
        _ => throw new InvalidDataException($"expected an integer column, found {array.Data.DataType.Name}"),
    };

    /// <summary>A value as delivery hands it on: string, long, double, bool, DateTimeOffset (timestamps), DateOnly (dates) or null.</summary>
    public static object? Value(IArrowArray array, int row)
    {
        if (array.IsNull(row))
        {
            return null;
        }
        return array switch
        {
            StringArray or DictionaryArray => String(array, row),
            Int64Array a => a.GetValue(row),
            Int32Array a => (long?)a.GetValue(row),
            DoubleArray a => a.GetValue(row),
            FloatArray a => (double?)a.GetValue(row),
            BooleanArray a => a.GetValue(row),
            TimestampArray a => a.GetTimestamp(row),
            Date32Array a => a.GetDateOnly(row),
            _ => throw new InvalidDataException($"cannot deliver a column of type {array.Data.DataType.Name}"),
        };
    }

    /// <summary>A dictionary array's index at <paramref name="row"/>, whatever integer type the indices are.</summary>
    internal static int Index(IArrowArray indices, int row) => indices switch
    {
        Int32Array i => i.GetValue(row)!.Value,
        Int16Array i => i.GetValue(row)!.Value,
        Int8Array i => i.GetValue(row)!.Value,
        UInt8Array i => i.GetValue(row)!.Value,
        UInt16Array i => i.GetValue(row)!.Value,
        Int64Array i => (int)i.GetValue(row)!.Value,
        _ => throw new InvalidDataException($"unexpected dictionary index type {indices.Data.DataType.Name}"),
    };

    public static bool IsString(IArrowType type) => type is StringType or DictionaryType { ValueType: StringType };
}
