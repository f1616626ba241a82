/// The DWARF numbers the type reader needs (DWARF 5 spec, section 7, plus the GNU
/// extensions that dwz and split DWARF emit). Values are UInt64 because tags, attributes
/// and forms are ULEB128-encoded and a malformed file may use any value.
enum DWARFConstant {
    enum Tag {
        static let arrayType: UInt64 = 0x01
        static let classType: UInt64 = 0x02
        static let enumerationType: UInt64 = 0x04
        static let member: UInt64 = 0x0d
        static let pointerType: UInt64 = 0x0f
        static let referenceType: UInt64 = 0x10
        static let compileUnit: UInt64 = 0x11
        static let structureType: UInt64 = 0x13
        static let typedef: UInt64 = 0x16
        static let unionType: UInt64 = 0x17
        static let subrangeType: UInt64 = 0x21
        static let baseType: UInt64 = 0x24
        static let constType: UInt64 = 0x26
        static let enumerator: UInt64 = 0x28
        static let packedType: UInt64 = 0x2d
        static let volatileType: UInt64 = 0x35
        static let restrictType: UInt64 = 0x37
        static let namespace: UInt64 = 0x39
        static let module: UInt64 = 0x1e
        static let partialUnit: UInt64 = 0x3c
        static let sharedType: UInt64 = 0x40
        static let typeUnit: UInt64 = 0x41
        static let rvalueReferenceType: UInt64 = 0x42
        static let atomicType: UInt64 = 0x47
        static let skeletonUnit: UInt64 = 0x4a
        static let immutableType: UInt64 = 0x4b
        static let lexicalBlock: UInt64 = 0x0b
        static let inlinedSubroutine: UInt64 = 0x1d
        static let subprogram: UInt64 = 0x2e
    }

    enum Attribute {
        static let sibling: UInt64 = 0x01
        static let name: UInt64 = 0x03
        static let byteSize: UInt64 = 0x0b
        static let bitOffset: UInt64 = 0x0c
        static let bitSize: UInt64 = 0x0d
        static let language: UInt64 = 0x13
        static let constValue: UInt64 = 0x1c
        static let upperBound: UInt64 = 0x2f
        static let lowerBound: UInt64 = 0x22
        static let count: UInt64 = 0x37
        static let dataMemberLocation: UInt64 = 0x38
        static let declaration: UInt64 = 0x3c
        static let encoding: UInt64 = 0x3e
        static let type: UInt64 = 0x49
        static let signature: UInt64 = 0x69
        static let dataBitOffset: UInt64 = 0x6b
        static let strOffsetsBase: UInt64 = 0x72
        static let stmtList: UInt64 = 0x10
        static let lowPC: UInt64 = 0x11
        static let highPC: UInt64 = 0x12
        static let compDir: UInt64 = 0x1b
        static let abstractOrigin: UInt64 = 0x31
        static let specification: UInt64 = 0x47
        static let ranges: UInt64 = 0x55
        static let callFile: UInt64 = 0x58
        static let callLine: UInt64 = 0x59
        static let addrBase: UInt64 = 0x73
        static let rnglistsBase: UInt64 = 0x74
    }

    enum Form {
        static let addr: UInt64 = 0x01
        static let block2: UInt64 = 0x03
        static let block4: UInt64 = 0x04
        static let data2: UInt64 = 0x05
        static let data4: UInt64 = 0x06
        static let data8: UInt64 = 0x07
        static let string: UInt64 = 0x08
        static let block: UInt64 = 0x09
        static let block1: UInt64 = 0x0a
        static let data1: UInt64 = 0x0b
        static let flag: UInt64 = 0x0c
        static let sdata: UInt64 = 0x0d
        static let strp: UInt64 = 0x0e
        static let udata: UInt64 = 0x0f
        static let refAddr: UInt64 = 0x10
        static let ref1: UInt64 = 0x11
        static let ref2: UInt64 = 0x12
        static let ref4: UInt64 = 0x13
        static let ref8: UInt64 = 0x14
        static let refUdata: UInt64 = 0x15
        static let indirect: UInt64 = 0x16
        static let secOffset: UInt64 = 0x17
        static let exprloc: UInt64 = 0x18
        static let flagPresent: UInt64 = 0x19
        static let strx: UInt64 = 0x1a
        static let addrx: UInt64 = 0x1b
        static let refSup4: UInt64 = 0x1c
        static let strpSup: UInt64 = 0x1d
        static let data16: UInt64 = 0x1e
        static let lineStrp: UInt64 = 0x1f
        static let refSig8: UInt64 = 0x20
        static let implicitConst: UInt64 = 0x21
        static let loclistx: UInt64 = 0x22
        static let rnglistx: UInt64 = 0x23
        static let refSup8: UInt64 = 0x24
        static let strx1: UInt64 = 0x25
        static let strx2: UInt64 = 0x26
        static let strx3: UInt64 = 0x27
        static let strx4: UInt64 = 0x28
        static let addrx1: UInt64 = 0x29
        static let addrx2: UInt64 = 0x2a
        static let addrx3: UInt64 = 0x2b
        static let addrx4: UInt64 = 0x2c
        static let gnuAddrIndex: UInt64 = 0x1f01
        static let gnuStrIndex: UInt64 = 0x1f02
        static let gnuRefAlt: UInt64 = 0x1f20
        static let gnuStrpAlt: UInt64 = 0x1f21
    }

    enum UnitType {
        static let compile: UInt8 = 0x01
        static let type: UInt8 = 0x02
        static let partial: UInt8 = 0x03
        static let skeleton: UInt8 = 0x04
        static let splitCompile: UInt8 = 0x05
        static let splitType: UInt8 = 0x06
    }

    enum Operation {
        static let const1u: UInt8 = 0x08
        static let const1s: UInt8 = 0x09
        static let const2u: UInt8 = 0x0a
        static let const2s: UInt8 = 0x0b
        static let const4u: UInt8 = 0x0c
        static let const4s: UInt8 = 0x0d
        static let const8u: UInt8 = 0x0e
        static let const8s: UInt8 = 0x0f
        static let constu: UInt8 = 0x10
        static let consts: UInt8 = 0x11
        static let minus: UInt8 = 0x1c
        static let plus: UInt8 = 0x22
        static let plusUconst: UInt8 = 0x23
        static let lit0: UInt8 = 0x30
        static let lit31: UInt8 = 0x4f
        static let nop: UInt8 = 0x96
    }

    enum BaseTypeEncoding {
        static let signed: UInt64 = 0x05
        static let signedChar: UInt64 = 0x06
    }

    /// C-family languages whose struct bodies never hold nested type definitions (GCC and
    /// Clang put every C tag at unit scope), so the indexer may skip them whole.
    static func isCLanguage(_ language: UInt64) -> Bool {
        switch language {
        case 0x01 /* C89 */, 0x02 /* C */, 0x0c /* C99 */, 0x1d /* C11 */, 0x2c /* C17 */: return true
        default: return false
        }
    }
}
