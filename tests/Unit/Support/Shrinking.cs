namespace LockFree.Tests.Unit.Support;

/// <summary>The shrink steps every model property uses for its operation list.</summary>
public static class Shrinking
{
    /// <summary>Shorter lists, most aggressive first: each half, then the list without one element (each position in turn).</summary>
    public static IEnumerable<T[]> Shorter<T>(T[] items)
    {
        if (items.Length > 1)
        {
            yield return items[..(items.Length / 2)];
            yield return items[(items.Length / 2)..];
        }

        for (int i = 0; i < items.Length; i++)
        {
            yield return [.. items[..i], .. items[(i + 1)..]];
        }
    }
}
