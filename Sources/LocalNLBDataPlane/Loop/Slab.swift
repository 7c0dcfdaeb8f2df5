import LocalNLBModel

/// Objects kept and reused by index: flows, health-check probes, control API connections. The index
/// goes into epoll tokens, so an object never moves; a free list hands back released ones first.
package struct Slab<Element: AnyObject>: Sequence {
    private var elements: [Element] = []
    private var free: [Int] = []

    /// A released element, or a new one made with its index.
    package mutating func take(_ make: (Int) -> Element) -> Element {
        if let index = free.popLast() { return elements[index] }
        let element = make(elements.count)
        elements.append(element)
        return element
    }

    /// The element at `index` may be handed out again.
    package mutating func release(_ index: Int) { free.append(index) }

    package subscript(index: Int) -> Element { elements[index] }

    package func makeIterator() -> IndexingIterator<[Element]> { elements.makeIterator() }

    package init() {}
}
