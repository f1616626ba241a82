extension RandomAccessCollection where Index == Int {
    /// The index of the last element whose key is at most `value`, in a collection sorted by
    /// that key; nil when every key is larger. The lookup every address index makes.
    func lastIndex(withKeyAtMost value: UInt64, key: (Element) -> UInt64) -> Int? {
        var low = startIndex, high = endIndex
        while low < high {
            let middle = low + (high - low) / 2
            if key(self[middle]) <= value { low = middle + 1 } else { high = middle }
        }
        return low > startIndex ? low - 1 : nil
    }
}
