build-pre/obj/src/util/log.o: src/util/log.c src/util/util.h
src/util/util.h:
